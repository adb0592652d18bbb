"""Prequential quality: every labelled event is scored before it is learned; these count those scores.

Whole-run ranking metrics come from a fixed histogram of scores per class (bounded memory; ties
within one of 16,384 bins); rolling metrics are exact over a ring buffer of the last labelled
events. The same functions score every peer in the benchmarks, so all numbers are comparable.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

BINS = 16_384


def average_precision(
    scores: np.ndarray, labels: np.ndarray, ranked: np.ndarray | None = None, positives_at: np.ndarray | None = None
) -> float:
    """PR-AUC as average precision (tied scores form one threshold); NaN without positives.
    ``ranked``: ``np.sort(scores)`` when the caller keeps it (the same value, without the sort);
    ``positives_at``: ``np.flatnonzero(labels == 1)``, when the caller rates several models' scores.

    >>> average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    0.8333333333333333
    """
    at = np.flatnonzero(labels == 1) if positives_at is None else positives_at
    pos = at.shape[0]
    if pos == 0:
        return math.nan
    # Each positive adds the precision of alerting at its score: (positives >= it) / (events >= it).
    # Two sorts and two binary searches instead of an argsort: the rankings run on every few positives.
    positives = np.sort(scores[at])
    seen = scores.shape[0] - np.searchsorted(np.sort(scores) if ranked is None else ranked, positives, side="left")
    tp = pos - np.searchsorted(positives, positives, side="left")
    return float(np.sum(tp / seen) / pos)


def resampled_average_precision(
    scores: np.ndarray, labels: np.ndarray, drawn: np.ndarray, ranked: np.ndarray | None = None
) -> np.ndarray:
    """Average precision of each resample of the positives, the negatives as they are: ``drawn``
    (resamples x positives) counts how often each positive, in order, is drawn (``ranked``:
    ``np.sort(scores)``, when kept). Drawing each once gives :func:`average_precision`.

    A bootstrap over the positives: they are what is scarce, and a few of them ranked at the top by
    luck make a model's average precision; resampling them shows how much of a lead is luck.

    >>> resampled_average_precision(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]), np.array([[1, 1], [2, 0], [0, 2]]))
    array([0.83333333, 1.        , 0.66666667])
    """
    positives = scores[labels == 1]
    everything = np.sort(scores) if ranked is None else ranked
    at_or_above = everything.shape[0] - np.searchsorted(everything, positives, side="left")
    negatives_at_or_above = at_or_above - (positives.shape[0] - np.searchsorted(np.sort(positives), positives, side="left"))
    order = np.argsort(-positives, kind="stable")
    counts = drawn[:, order].astype(np.float64)
    # A cut at a positive's score catches every drawn positive scored at or above it, ties included.
    descending = -positives[order]
    caught = np.cumsum(counts, axis=1)[:, np.searchsorted(descending, descending, side="right") - 1]
    seen = caught + negatives_at_or_above[order]
    precision = np.divide(caught, seen, out=np.zeros_like(caught), where=seen > 0)
    averages: np.ndarray = (counts * precision).sum(axis=1) / counts.sum(axis=1)
    return averages


def _ap_from_cumulative(tp: np.ndarray, seen: np.ndarray, pos: int) -> float:
    recall_gain = np.diff(np.r_[0.0, tp]) / pos
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    return float(np.sum(recall_gain * precision))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count half); NaN without both classes.

    >>> roc_auc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    0.75
    """
    pos = int(labels.sum())
    neg = labels.shape[0] - pos
    if pos == 0 or neg == 0:
        return math.nan
    order = np.argsort(scores, kind="stable")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based, ties share their mean rank
    rank_sum = float(ranks[labels[order] == 1].sum())
    return float((rank_sum - pos * (pos + 1) / 2.0) / (pos * neg))


def recall_at_budget(scores: np.ndarray, labels: np.ndarray, budget: float) -> float:
    """Share of positives among the top ``budget`` share of scores (the alert queue)."""
    pos = int(labels.sum())
    if pos == 0:
        return math.nan
    top = max(1, int(round(budget * scores.shape[0])))
    order = np.argsort(-scores, kind="stable")
    return float(labels[order[:top]].sum() / pos)


@dataclass
class Confusion:
    """Counts of served alerts against labels."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @classmethod
    def of(cls, labels: np.ndarray, alerts: np.ndarray) -> Confusion:
        """The counts of a whole run at once (labels 0/1, alerts bool)."""
        y, a = labels.astype(bool), alerts.astype(bool)
        return cls(int(np.sum(y & a)), int(np.sum(~y & a)), int(np.sum(~y & ~a)), int(np.sum(y & ~a)))

    def add(self, y: int, alert: bool) -> None:
        if y:
            self.tp += alert
            self.fn += not alert
        else:
            self.fp += alert
            self.tn += not alert

    def rates(self) -> dict[str, float]:
        n = self.tp + self.fp + self.tn + self.fn
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan
        specificity = self.tn / (self.tn + self.fp) if self.tn + self.fp else math.nan
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan
        agree = (self.tp + self.tn) / n if n else math.nan
        chance = (
            ((self.tp + self.fp) * (self.tp + self.fn) + (self.tn + self.fn) * (self.tn + self.fp)) / n**2
            if n
            else math.nan
        )
        kappa = (agree - chance) / (1.0 - chance) if n and chance < 1.0 else 0.0
        return {
            "recall": recall,
            "precision": precision,
            "gmean": math.sqrt(recall * specificity) if n else math.nan,
            "kappa": kappa,
        }


@dataclass
class Prequential:
    """Whole-run and rolling quality of the served scores, alerts and class decisions."""

    window: int
    budget: float
    hist: np.ndarray = field(default_factory=lambda: np.zeros((2, BINS), dtype=np.int64))
    confusion: Confusion = field(default_factory=Confusion)  # of the alerts
    n: int = 0
    decisions: Confusion = field(default_factory=Confusion)  # of the class decisions

    def __post_init__(self) -> None:
        # The last ``window`` labelled events (a ring, ``n`` written): score, alert, class decision.
        self.recent = np.zeros((3, self.window))
        self.recent_labels = np.zeros(self.window, dtype=np.int8)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "decisions" not in state:  # saved before events had a class decision: their alerts stand for them
            state["decisions"] = copy.deepcopy(state["confusion"])
            scores, alerts = state["recent"], state.pop("recent_alerts")
            state["recent"] = np.stack([scores.values, alerts.values, alerts.values])
            state["recent_labels"] = scores.labels
        self.__dict__.update(state)

    def observe(self, y: int, p: float, alert: bool, predicted: bool) -> None:
        self.observe_many(np.array([y]), np.array([p]), np.array([[alert], [predicted]]))

    def observe_many(self, ys: np.ndarray, ps: np.ndarray, verdicts: np.ndarray) -> None:
        """Labels ``ys`` of events served scores ``ps`` and ``verdicts`` (2 x events: alerts, class
        decisions), in order."""
        counts = count_labelled(self.hist, ys, ps, verdicts[0], verdicts[1], self.recent, self.recent_labels, self.n)
        for confusion, (tp, fp, tn, fn) in zip((self.confusion, self.decisions), counts.tolist()):
            confusion.tp, confusion.fp, confusion.tn, confusion.fn = confusion.tp + tp, confusion.fp + fp, confusion.tn + tn, confusion.fn + fn
        self.n += ys.shape[0]

    def summary(self) -> dict[str, float]:
        """Whole-run metrics."""
        neg, pos = self.hist[0][::-1].astype(float), self.hist[1][::-1].astype(float)
        tp, seen = np.cumsum(pos), np.cumsum(pos + neg)
        total_pos = int(pos.sum())
        out = {"labelled": float(self.n), "positives": float(total_pos)}
        out["pr_auc"] = _ap_from_cumulative(tp, seen, total_pos) if total_pos else math.nan
        out["roc_auc"] = _hist_roc(pos, neg)
        out["recall_at_budget"] = _hist_recall_at(tp, seen, total_pos, self.budget)
        out.update(self.confusion.rates())
        out.update(_class_rates(self.decisions))
        return out

    def rolling(self) -> dict[str, float]:
        """Metrics over the last ``window`` labelled events."""
        m = min(self.n, self.window)
        (scores, alerts, decisions), labels = self.recent[:, :m], self.recent_labels[:m]
        out = {"pr_auc": average_precision(scores, labels.astype(np.int64))}
        out.update(Confusion.of(labels, alerts > 0).rates())
        out.update(_class_rates(Confusion.of(labels, decisions > 0)))
        return out


def _class_rates(decisions: Confusion) -> dict[str, float]:
    """The class decisions' rates, named ``class_*`` beside the alerts' own."""
    return {f"class_{name}": value for name, value in decisions.rates().items()}


@njit(cache=True)
def count_labelled(
    hist: np.ndarray, ys: np.ndarray, ps: np.ndarray, alerts: np.ndarray, predicted: np.ndarray, recent: np.ndarray,
    recent_labels: np.ndarray, filled: int,
) -> np.ndarray:  # fmt: skip
    """Each labelled score into its class's histogram, and with its verdicts into the ``recent``
    ring (``filled`` written so far); the run's (tp, fp, tn, fn) of the alerts (row 0) and of the
    class decisions (row 1)."""
    counts = np.zeros((2, 4), dtype=np.int64)
    size = recent_labels.shape[0]
    for i in range(ys.shape[0]):
        hist[ys[i], min(int(ps[i] * BINS), BINS - 1)] += 1
        counts[0, _cell(ys[i], alerts[i])] += 1
        counts[1, _cell(ys[i], predicted[i])] += 1
        slot = (filled + i) % size
        recent[0, slot], recent[1, slot], recent[2, slot], recent_labels[slot] = ps[i], alerts[i], predicted[i], ys[i]
    return counts


@njit(cache=True, inline="always")
def _cell(y: int, flagged: bool) -> int:
    """The confusion cell (0 tp, 1 fp, 2 tn, 3 fn) of a label and a verdict."""
    if y == 1:
        return 0 if flagged else 3
    return 1 if flagged else 2


def _hist_roc(pos: np.ndarray, neg: np.ndarray) -> float:
    p_total, n_total = pos.sum(), neg.sum()
    if p_total == 0 or n_total == 0:
        return math.nan
    pos_above = np.cumsum(pos) - pos  # positives in strictly higher bins
    return float(np.sum(neg * (pos_above + pos / 2.0)) / (p_total * n_total))


def _hist_recall_at(tp: np.ndarray, seen: np.ndarray, pos: int, budget: float) -> float:
    if pos == 0:
        return math.nan
    k = int(np.searchsorted(seen, budget * seen[-1]))
    return float(tp[min(k, tp.shape[0] - 1)] / pos)

