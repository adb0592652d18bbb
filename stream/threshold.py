"""The online decision threshold: an event is an alert when its score is *above* ``value``.

Strictly above, because tree models give many events the very same score: a tie at the cut must
not turn a 1% alert budget into a flood.

``budget``: alert on the top ``q`` of recent scores (the (1 - q) quantile of a ring buffer of the
last ``window`` scores: bounded memory, exact over the window, recomputed every ``refresh_every``
events). ``gmean``: the threshold that maximises G-mean = sqrt(TPR * TNR) over the last ``window``
labelled scores.
"""

from __future__ import annotations

import numpy as np

from stream.config import ThresholdSettings


class Ring:
    """A fixed-size ring buffer of floats (optionally paired with 0/1 labels)."""

    def __init__(self, size: int) -> None:
        self.values = np.zeros(size)
        self.labels = np.zeros(size, dtype=np.int8)
        self.n = 0

    def push(self, value: float, label: int = 0) -> None:
        i = self.n % self.values.shape[0]
        self.values[i] = value
        self.labels[i] = label
        self.n += 1

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        m = min(self.n, self.values.shape[0])
        return self.values[:m], self.labels[:m]


def best_gmean_threshold(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The cut (alert when ``p > cut``) maximising sqrt(TPR * TNR); None without both classes.

    >>> best_gmean_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    0.5
    """
    pos = int(labels.sum())
    neg = labels.shape[0] - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    last = np.r_[s[1:] != s[:-1], True]  # only cut between distinct scores
    gmean = np.sqrt((tp / pos) * (1.0 - fp / neg))
    gmean[~last] = -1.0
    k = int(np.argmax(gmean))
    below = s[k + 1] if k + 1 < s.shape[0] else s[k] - 1e-9
    return float((s[k] + below) / 2.0)


class Threshold:
    """``value`` is the current cut; ``observe_score`` / ``observe_label`` keep it current."""

    def __init__(self, settings: ThresholdSettings) -> None:
        self.settings = settings
        self.value = settings.initial
        self.scores = Ring(settings.window)
        self.labelled = Ring(settings.window)
        self.since = 0

    def observe_score(self, p: float) -> None:
        if self.settings.mode != "budget":
            return
        self.scores.push(p)
        self.since += 1
        if self.since >= self.settings.refresh_every:
            self.since = 0
            values, _ = self.scores.filled()
            self.value = float(np.quantile(values, 1.0 - self.settings.alert_budget))

    def observe_label(self, y: int, p: float) -> None:
        if self.settings.mode != "gmean":
            return
        self.labelled.push(p, y)
        self.since += 1
        if self.since >= self.settings.refresh_every:
            self.since = 0
            best = best_gmean_threshold(*self.labelled.filled())
            if best is not None:
                self.value = best
