"""Champion/challenger: several learners score and learn; the one that ranks best lately serves.

No learner wins everywhere on imbalanced streams (linear fraud data favours a scaled logistic
regression, non-linear concepts favour tree ensembles, and a drift can flip the order), so the
choice is made from the stream, prequentially: every candidate scores every event before any label
is known, and its scores join a sliding window of labelled events. At every ``rank_every``-th
positive the candidates are ranked on the window (PR-AUC by default). A challenger takes over only
when it beats the champion by ``margin`` at every ranking over ``patience`` positives, with at least ``min_positives``
positives seen since the last change (hysteresis: no flapping — every change also changes the
score's calibration, which costs ranking quality across the change). A swap in the champion (a confirmed drift) re-opens the contest: the
windows restart so the new regime decides. A challenger's swap does not: restarting the windows then
only delayed a due change of champion (on the suite's Hyperplane stream by 10k events); its window
scores from before the swap age out. With one candidate this is just that model.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from stream.config import ModelSettings, SelectionSettings
from stream.adwin import watch_run
from stream.model import AdwinMonitors, OnlineModel, RiverMonitors
from stream.quality import average_precision, recall_at_budget, roc_auc
from stream.balanced import best_gmean_threshold
from stream.windows import Ranked, ring_write

log = logging.getLogger(__name__)

_UNWATCHED = AdwinMonitors(0.5, 0.5)  # the kernel's placeholder for a model without monitors (never fed)
_NEVER = 1 << 62

def _gmean(scores: np.ndarray, labels: np.ndarray) -> float:
    cut = best_gmean_threshold(scores, labels)
    if cut is None:
        return math.nan
    alert = scores > cut
    pos = labels == 1
    return float(np.sqrt(alert[pos].mean() * (~alert[~pos]).mean()))


def window_quality(
    name: str, scores: np.ndarray, labels: np.ndarray, ranked: np.ndarray, budget: float, positives_at: np.ndarray
) -> float:  # fmt: skip
    """The ranking metric ``name`` of one candidate's window (``ranked``: its scores, sorted;
    ``positives_at``: where the labels are 1)."""
    if name == "pr_auc":
        return average_precision(scores, labels, ranked, positives_at)
    if name == "roc_auc":
        return roc_auc(scores, labels)
    if name == "recall_at_budget":
        return recall_at_budget(scores, labels, budget)
    return _gmean(scores, labels)


class ModelSet:
    """The served model: a champion among candidates (or their quality-weighted blend)."""

    def __init__(self, model: ModelSettings, selection: SelectionSettings, budget: float) -> None:
        self.selection = selection
        kinds = list(selection.candidates) if selection.enabled else [model.kind]
        self.names = [k if kinds.count(k) == 1 else f"{k}#{i}" for i, k in enumerate(kinds)]
        self.candidates = [OnlineModel(model.model_copy(update={"kind": k})) for k in kinds]
        self.champion = kinds.index(model.kind) if model.kind in kinds else 0
        self.budget = budget
        self.window_scores = np.zeros((len(kinds), selection.window))
        self.window_labels = np.zeros(selection.window, dtype=np.int64)
        self.filled = 0
        self.window_ranked = Ranked(len(kinds), selection.window)  # each candidate's window scores, sorted
        self.quality = np.full(len(kinds), math.nan)
        self.positives_since_change = 0
        self.leader, self.lead = self.champion, 0  # who beats the champion by the margin, for how long
        self.version = 1
        self.switches = 0
        self.switch_log: list[tuple[int, str, str]] = []  # (labelled events, from, to), bounded
        self.labelled = 0
        self.drifted = False  # the champion confirmed a drift at the last observe()
        self._share_credit = 0.0

    def score(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        """The served probability and every candidate's."""
        served, scores = self.score_many(z[None, :])
        return float(served[0]), scores[:, 0]

    def score_many(self, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The served probability of every row, and every candidate's (candidates x rows)."""
        scores = np.stack([c.score_many(zs) for c in self.candidates])
        if self.selection.mode == "blend" and len(scores) > 1:
            weights = np.nan_to_num(self.quality, nan=0.0)
            if weights.sum() > 0:
                return weights @ scores / weights.sum(), scores
        return scores[self.champion].copy(), scores

    def flush(self) -> None:
        for candidate in self.candidates:
            candidate.flush()

    def observe(self, z: np.ndarray, y: int, scores: np.ndarray) -> bool:
        """Feed the candidates' prequential scores of a labelled event; True if the served model changed."""
        return self._settle(y, scores, [c.observe(z, y, float(scores[i])) for i, c in enumerate(self.candidates)])

    def observe_many(self, zs: np.ndarray, ys: np.ndarray, scores: np.ndarray, start: int) -> tuple[int, bool]:
        """``observe`` events ``start``, ``start + 1``, ... in one kernel call while nothing needs a decision.

        Returns where it stopped (the events before that were observed) and whether the served
        model changed at the last of them; ``start`` when the detectors are river's (then use
        ``observe``). A model on trial scores the run as it stands at its start.
        """
        if any(isinstance(c.monitors, RiverMonitors) for c in self.candidates):
            return start, False
        # A model without drift handling sits out the monitors' kernel (a cooldown that never ends).
        banks = [c.monitors if isinstance(c.monitors, AdwinMonitors) else _UNWATCHED for c in self.candidates]
        zs, ys, scores = zs[start:], ys[start:], scores[:, start:]
        run = ys.shape[0]
        trials: dict[int, np.ndarray] = {}
        for i, candidate in enumerate(self.candidates):
            if candidate.background is not None:
                trials[i] = candidate.background.learner.proba_many(zs)
                # The run ends where the trial would time out, so that event gets its decision.
                run = min(run, max(1, candidate.settings.background_timeout - candidate.background.age + 1))
        ys, scores = ys[:run], scores[:, :run]
        cooldowns = np.array([c.cooldown if c.monitors else _NEVER for c in self.candidates], dtype=np.int64)
        fired = np.zeros(len(banks), dtype=np.int64)
        errors = np.where(ys == 1, 1.0 - scores, scores)
        per_class = self.candidates[0].settings.drift_scope == "per_class"
        # A positive needs a decision when it completes a ranking's count, or (any) while a trial runs.
        every = self.selection.rank_every
        positives_to_stop = 1 if trials else every - self.positives_since_change % every
        n = watch_run(
            tuple(b.stats for b in banks), tuple(b.buckets for b in banks), tuple(b.counts for b in banks),
            cooldowns, ys, errors, per_class, fired, positives_to_stop,
        )  # fmt: skip
        for i, candidate in enumerate(self.candidates):
            if candidate.monitors:
                candidate.cooldown = int(cooldowns[i])
            if i in trials:
                candidate.background.compare_many(ys[:n], scores[i, :n], trials[i][:n])  # type: ignore[union-attr]
        self._settle_quiet(ys[: n - 1], scores[:, : n - 1])
        last = int(ys[n - 1])
        swapped = [c.react(last, bool(f & 1), bool(f & 2)) for c, f in zip(self.candidates, fired.tolist())]
        return start + n, self._settle(last, scores[:, n - 1], swapped)

    def _settle_quiet(self, ys: np.ndarray, scores: np.ndarray) -> None:
        """Events no monitor fired on, at no ranking and no trial: they join the ranking window."""
        self.labelled += ys.shape[0]
        self.positives_since_change += int(ys.sum())
        self.drifted = False
        self._remember(ys, scores)

    def _settle(self, y: int, scores: np.ndarray, swapped: list[bool]) -> bool:
        """After the candidates saw a labelled event (``swapped``: who was replaced): window, ranking."""
        self.labelled += 1
        changed = self.drifted = False
        if swapped[self.champion]:  # the served model changed: the new regime decides; the sampler follows it
            self._reopen()
            changed = self.drifted = True
        self._remember(np.array([y]), scores[:, None])
        if y == 1:
            self.positives_since_change += 1
            if self.positives_since_change % self.selection.rank_every == 0:
                changed |= self._contest()
        if changed:
            self.version += 1
        return changed

    def _remember(self, ys: np.ndarray, scores: np.ndarray) -> None:
        """A run of labelled events' scores joins the ranking window."""
        self.filled = ring_write(self.window_scores, self.window_labels, self.filled, scores, ys)

    def _reopen(self) -> None:
        self.filled = 0
        self.window_ranked.restart()
        self.positives_since_change = 0

    def _contest(self) -> bool:
        if len(self.candidates) == 1 or self.positives_since_change < self.selection.min_positives:
            return False
        n = min(self.filled, self.window_labels.shape[0])
        labels = self.window_labels[:n]
        ranked = self.window_ranked.update(self.window_scores, self.filled)
        metric, scores = self.selection.metric, self.window_scores
        at = np.flatnonzero(labels == 1)
        self.quality = np.array([
            window_quality(metric, scores[i, :n], labels, ranked[i], self.budget, at) for i in range(len(self.candidates))
        ])  # fmt: skip
        best = int(np.nanargmax(self.quality)) if not np.all(np.isnan(self.quality)) else self.champion
        if best == self.champion or not self.quality[best] > self.quality[self.champion] + self.selection.margin:
            self.leader, self.lead = self.champion, 0
            return False
        step = self.selection.rank_every  # the lead is counted in positives
        self.lead = self.lead + step if best == self.leader else step
        self.leader = best
        if self.lead < self.selection.patience:  # a lead must hold, not just appear once
            return False
        log.info(
            "champion %s -> %s after %d labelled events (%s %.4f vs %.4f)", self.names[self.champion],
            self.names[best], self.labelled, self.selection.metric, self.quality[best], self.quality[self.champion],
        )  # fmt: skip
        self.switch_log.append((self.labelled, self.names[self.champion], self.names[best]))
        del self.switch_log[:-1000]
        self.champion, self.switches, self.positives_since_change, self.lead = best, self.switches + 1, 0, 0
        return self.selection.mode == "champion"

    def learn(self, z: np.ndarray, y: int, w: float) -> None:
        self.learn_many(z[None, :], np.array([y], dtype=np.int64), np.array([w]))

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        """The champion learns every kept event; challengers a ``challenger_share`` of the majority."""
        share = self.selection.challenger_share
        if share == 1.0:  # every event (the credit below, step by step, comes to this)
            self._share_credit += float(np.count_nonzero(ys == 1))
            for candidate in self.candidates:
                candidate.learn_many(zs, ys, ws)
            return
        challengers_learn = np.zeros(ys.shape[0], dtype=bool)
        credit = self._share_credit
        for i, y in enumerate(ys.tolist()):
            credit += share
            challengers_learn[i] = y == 1 or credit >= 1.0
            if challengers_learn[i] and y != 1:
                credit -= 1.0
        self._share_credit = credit
        some = challengers_learn.any()
        if some:  # a kept majority event stands for 1 / share of them
            zc, yc = zs[challengers_learn], ys[challengers_learn]
            wc = np.where(yc == 1, ws[challengers_learn], ws[challengers_learn] / share)
        for i, candidate in enumerate(self.candidates):
            if i == self.champion:
                candidate.learn_many(zs, ys, ws)
            elif some:
                candidate.learn_many(zc, yc, wc)

    @property
    def drifts(self) -> dict[str, int]:
        total = {"positive": 0, "negative": 0}
        for candidate in self.candidates:
            for key, value in candidate.drifts.items():
                total[key] += value
        return total

    @property
    def reverts(self) -> int:
        return sum(candidate.reverts for candidate in self.candidates)

    def summary(self) -> list[dict[str, object]]:
        return [
            {"name": name, "champion": i == self.champion, self.selection.metric: float(self.quality[i])}
            for i, name in enumerate(self.names)
        ]
