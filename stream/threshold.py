"""The online decision threshold: an event is an alert when its score is *above* ``value``.

``budget``: alert on the top ``q`` of recent scores: ``value`` is the k-th highest of the last
``window`` scores (k = q x window; a ring buffer: bounded memory, exact over the window, recomputed
every ``refresh_every`` events). Tree models give many events the very same score, so the cut often
sits on a tie: alerting all of it can turn a 1% budget into 5%, alerting none of it can silence the
service exactly when the model is sure (a fraud burst scored 1.0 by every tree). So events scored
exactly ``value`` take turns: the share of them that fills the budget alerts, evenly spread (a
deterministic credit, as the checkpoint replays it). A score of 0 never alerts.

The budget is also bounded: an event does not alert when 1.5 x the budget's share of the window's
events already did. The cut comes from past scores, and when a model grows surer, every new positive
outscores them (Shuttle: 5.7% alerts at a 1% budget without the bound). 1.5 x, not 1 x, so that this
first come, first served quota does not take alerts from sure events while the cut holds.

``gmean``: the threshold that maximises G-mean = sqrt(TPR * TNR) over the last ``window``
labelled scores; until labels of both classes have given it a cut, the budget rule decides (never a
fixed guess while labels are late or missing).

Every score also gets the model's *class decision* (``predicted``), in either mode: above that
balanced cut (the budget rule's verdict until it exists). The alert is what an operator's queue
takes, bounded by the budget; the class decision is the classifier's answer to "is this event
positive?", what a stream learner's ``predict_one`` gives, and what G-mean and kappa judge. A
balanced cut flags 3x-16x as many events as a 1% budget on the benchmark streams: a decision to
read, not a queue to work.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stream.balanced import GmeanCut
from stream.config import ThresholdSettings
from stream.windows import Ring, SortedView, replace_sorted, ring_writes

BOUND = 1.5  # at most this many times the budget's share of the window alerts (see the module text)


class TopScores(SortedView):
    """The highest scores of a ring buffer's window, sorted, brought up to date when asked: every
    score in the window at or above ``floor``, and no other (what the budget rule's cut needs).

    A budget of 1% cuts at the 200th of 20,000 scores, so about ``4 k`` of them are kept: the ring's
    writes since the last ask enter, and the scores they overwrote leave, only where at or above
    the floor (a merge into a short sorted array, not into the whole window). When too many leave,
    the highest are picked from the whole window afresh; when too many enter, the floor rises. Not
    saved in a checkpoint (a ``SortedView``): the first ask after a restore picks afresh.
    """

    def _reset(self) -> None:
        self.shadow = np.zeros((1, self.size))  # the ring as of the last ask
        self.top = np.zeros(0)  # sorted
        self.floor = math.inf
        self.synced = -1  # nothing picked yet

    def cut(self, values: np.ndarray, filled: int, budget: float) -> tuple[float, float]:
        """``budget_cut`` of ``values[:min(filled, size)]`` (``filled``: writes so far)."""
        n = min(filled, self.size)
        k = max(1, round(budget * n))
        if self.synced < 0 or not self.synced <= filled < self.synced + self.size:  # new or all rewritten
            self._pick(values[:n], k)
        elif filled > self.synced:
            gone, new = ring_writes(self.shadow, values[None, :], self.synced, filled)
            self.top = replace_above(self.top, self.floor, gone[0], new[0])
            if self.top.shape[0] < k:  # too many of the highest left: pick afresh
                self._pick(values[:n], k)
            elif self.top.shape[0] > 8 * k + 64:  # keep it short: the floor rises
                self.floor = float(self.top[-4 * k])
                self.top = self.top[np.searchsorted(self.top, self.floor, side="left") :]
        self.synced = filled
        return budget_cut(self.top, n, budget)

    def _pick(self, values: np.ndarray, k: int) -> None:
        n = values.shape[0]
        self.shadow[0, :n] = values
        keep = min(n, 4 * k)
        self.floor = float(np.partition(values, n - keep)[n - keep]) if keep < n else -math.inf
        self.top = np.sort(values[values >= self.floor])


@njit(cache=True)
def replace_above(top: np.ndarray, floor: float, gone: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Sorted ``top`` without the ``gone`` scores and with the ``new`` ones, each only if at or
    above ``floor`` (each gone one is in it then)."""
    leaving, entering = np.sort(gone[gone >= floor]), np.sort(new[new >= floor])
    out = np.empty(top.shape[0] - leaving.shape[0] + entering.shape[0])
    replace_sorted(top, leaving, entering, out)
    return out


@njit(cache=True)
def budget_alerts(
    ps: np.ndarray, cut: float, tie_share: float, credit: float, flags: np.ndarray, filled: int, bound: float,
    alerted: int, out: np.ndarray,
) -> tuple[float, int, int]:  # fmt: skip
    """The budget rule's verdicts on ``ps``, in order, into ``out``: above the cut; on it, when the
    tie credit passes a whole one; and no more while ``bound`` x the window's events (at least one)
    have alerted. The cap is worked out per event, so the verdicts do not depend on how the scores
    are split into calls (a restart, a poll of another size).

    ``flags`` is the window's ring of alert flags, ``filled`` the events written to it so far: the
    event leaving the window as each new one enters is read before the ring is written. Returns
    (tie credit, alerts in the window, alerts withheld).
    """
    size, withheld = flags.shape[0], 0
    for j in range(ps.shape[0]):
        alert = ps[j] > cut
        if not alert and ps[j] == cut and tie_share > 0.0:
            credit += tie_share
            if credit >= 1.0 - 1e-9:
                alert, credit = True, credit - 1.0
        if filled + j >= size:
            alerted -= flags[(filled + j) % size]
        cap = max(1, round(bound * min(filled + j + 1, size)))
        if alert and alerted >= cap:
            alert, withheld = False, withheld + 1
        alerted += int(alert)
        out[j] = alert
    return credit, alerted, withheld


def budget_cut(top: np.ndarray, n: int, budget: float) -> tuple[float, float]:
    """The k-th highest of ``n`` scores (k: the ``budget`` share of them), and the share of the
    scores equal to it that completes k alerts (0 when it is 0: no evidence never alerts).
    ``top``: their highest, sorted: all those at or above some value, at least k of them.

    >>> budget_cut(np.array([0.1, 0.2, 0.3, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0]), 10, 0.4)
    (0.9, 0.25)
    >>> budget_cut(np.array([0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0]), 10, 0.4)
    (0.9, 0.25)
    """
    m = top.shape[0]
    k = max(1, round(budget * n))
    cut = float(top[m - k])
    above = m - int(np.searchsorted(top, cut, side="right"))
    equal = m - above - int(np.searchsorted(top, cut, side="left"))
    return cut, (k - above) / equal if cut > 0.0 else 0.0


class Threshold:
    """``value`` is the alert cut, ``balanced`` the class decision's (None until labels of both
    classes); ``judge`` gives scores their verdicts, ``observe_labels`` keeps the balanced cut current."""

    # Events scored exactly ``value`` that alert (budget rule), and the credit that spreads them;
    # class defaults so that a state saved before they existed loads.
    tie_share = 0.0
    tie_credit = 0.0
    alerted = 0  # alerts among the budget window's events (their flags ride in its ring)
    withheld = 0  # alerts the bound withheld, all told

    def __init__(self, settings: ThresholdSettings) -> None:
        self.settings = settings
        self.value = settings.initial
        self.balanced: float | None = None  # the best G-mean cut on recent labels
        self.scores = Ring(settings.window)
        self.top = TopScores(settings.window)  # the budget window's highest scores, sorted
        self.labelled = Ring(settings.window)
        self.by_class = GmeanCut(settings.window)  # the labelled window's scores by class, sorted
        self.since_scores = 0  # scores since the budget cut was worked out
        self.since_labels = 0  # labels since the G-mean cut was

    def __setstate__(self, state: dict[str, object]) -> None:
        settings: ThresholdSettings = state["settings"]  # type: ignore[assignment]
        if "ranked" in state:  # saved with the whole window sorted (Ranked): its highest now, picked afresh
            del state["ranked"]
            state["top"] = TopScores(settings.window)
        if "gmean_ready" in state:  # saved before every mode kept the balanced cut (gmean mode's alert cut)
            ready = state.pop("gmean_ready") and settings.mode == "gmean"
            state["balanced"] = state["value"] if ready else None
            state["by_class"] = GmeanCut(settings.window)
        self.__dict__.update(state)

    @property
    def by_budget(self) -> bool:
        """The budget rule decides the alerts (in gmean mode, until the balanced cut exists)."""
        return self.settings.mode == "budget" or self.balanced is None

    def observe_score(self, p: float) -> None:
        self.judge(np.array([p]))

    def judge(self, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The alert cut each of these scores was judged by, and their verdicts (2 x scores: whether
        each alerts, each one's class decision), in order. While the budget rule decides, the scores
        then join its window, and its cut is worked out every ``refresh_every``."""
        verdicts = np.empty((2, ps.shape[0]), dtype=bool)
        alerts, predicted = verdicts
        if self.by_budget:
            cuts = self._judge_by_budget(ps, alerts)
        else:
            cuts = np.full(ps.shape[0], self.value)
            np.greater(ps, cuts, out=alerts)
        if self.balanced is None or self.settings.mode == "gmean":  # (then the alerts are the decisions)
            predicted[:] = alerts
        else:
            np.greater(ps, self.balanced, out=predicted)
        return cuts, verdicts

    def _judge_by_budget(self, ps: np.ndarray, alerts: np.ndarray) -> np.ndarray:
        cuts = np.empty(ps.shape[0])
        start = 0
        while start < ps.shape[0]:
            end = start + min(ps.shape[0] - start, self.settings.refresh_every - self.since_scores, self.settings.window)
            cuts[start:end] = self.value
            self._budget_alerts(ps[start:end], alerts[start:end])
            self.scores.push_many(ps[start:end], alerts[start:end].view(np.int8))  # the window's alert flags
            self.since_scores += end - start
            if self.since_scores >= self.settings.refresh_every:
                self.since_scores = 0
                self.value, self.tie_share = self.top.cut(self.scores.values, self.scores.n, self.settings.alert_budget)
            start = end
        return cuts

    def _budget_alerts(self, ps: np.ndarray, out: np.ndarray) -> None:
        bound = BOUND * self.settings.alert_budget
        self.tie_credit, self.alerted, withheld = budget_alerts(
            ps, self.value, self.tie_share, self.tie_credit, self.scores.labels, self.scores.n, bound, self.alerted, out
        )  # fmt: skip
        self.withheld += withheld

    def observe_labels(self, ys: np.ndarray, ps: np.ndarray) -> None:
        """``observe_label`` of each, in order: the balanced cut is worked out every
        ``refresh_every`` labels."""
        start = 0
        while start < ys.shape[0]:
            end = start + min(ys.shape[0] - start, self.settings.refresh_every - self.since_labels)
            self.labelled.push_many(ps[start:end], ys[start:end])
            self.since_labels += end - start
            if self.since_labels >= self.settings.refresh_every:
                self.since_labels = 0
                self._refresh_balanced()
            start = end

    def _refresh_balanced(self) -> None:
        best = self.by_class.cut(self.labelled.values, self.labelled.labels, self.labelled.n)
        if best is not None:
            self.balanced = best
            if self.settings.mode == "gmean":
                self.value = best

    def observe_label(self, y: int, p: float) -> None:
        self.observe_labels(np.array([y]), np.array([p]))
