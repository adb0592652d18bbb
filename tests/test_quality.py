from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from stream.quality import BINS, Confusion, Prequential, average_precision, recall_at_budget, roc_auc
from stream.windows import Ring


def brute_ap(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision by definition: mean precision at each positive's rank (no ties)."""
    order = np.argsort(-scores)
    hits = labels[order]
    ranks = np.nonzero(hits)[0] + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def brute_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def test_exact_metrics_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(3000) < 0.05).astype(np.int64)
    scores = rng.random(3000) + 0.5 * labels
    assert average_precision(scores, labels) == pytest.approx(brute_ap(scores, labels))
    assert roc_auc(scores, labels) == pytest.approx(brute_auc(scores, labels))
    top = np.argsort(-scores)[:30]
    assert recall_at_budget(scores, labels, 0.01) == pytest.approx(labels[top].sum() / labels.sum())


def test_histogram_whole_run_metrics_are_close_to_exact() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(50_000) < 0.01).astype(np.int64)
    scores = np.clip(rng.beta(1, 20, 50_000) + 0.3 * labels * rng.random(50_000), 0, 1)
    run = Prequential(window=1000, budget=0.01)
    for p, y in zip(scores, labels):
        run.observe(int(y), float(p), bool(p > 0.3), bool(p > 0.2))
    summary = run.summary()
    assert summary["pr_auc"] == pytest.approx(average_precision(scores, labels), abs=0.01)
    assert summary["roc_auc"] == pytest.approx(roc_auc(scores, labels), abs=0.002)
    assert summary["recall_at_budget"] == pytest.approx(recall_at_budget(scores, labels, 0.01), abs=0.02)
    tail = slice(-1000, None)
    assert run.rolling()["pr_auc"] == pytest.approx(average_precision(scores[tail], labels[tail]))


def test_runs_of_any_length_count_as_the_whole_run_at_once() -> None:
    rng = np.random.default_rng(2)
    labels = (rng.random(5_000) < 0.05).astype(np.int64)
    scores = np.r_[0.0, 1.0, rng.random(4_998)]  # the two ends: the first and the last bin
    alerts, predicted = scores > 0.8, scores > 0.4
    run, start = Prequential(window=700, budget=0.01), 0
    while start < 5_000:
        end = start + int(rng.integers(0, 90))
        run.observe_many(labels[start:end], scores[start:end], np.stack([alerts, predicted])[:, start:end])
        start = end
    assert run.confusion == Confusion.of(labels, alerts) and run.n == 5_000
    assert run.decisions == Confusion.of(labels, predicted) and run.decisions != run.confusion
    bins = np.minimum((scores * BINS).astype(np.int64), BINS - 1)
    assert np.array_equal(run.hist, np.stack([np.bincount(bins[labels == c], minlength=BINS) for c in (0, 1)]))
    assert np.array_equal(run.recent[0][np.arange(4_300, 5_000) % 700], scores[-700:])  # the last window
    assert np.array_equal(run.recent[2][np.arange(4_300, 5_000) % 700], predicted[-700:])
    assert np.array_equal(run.recent_labels[np.arange(4_300, 5_000) % 700], labels[-700:])


def test_confusion_rates() -> None:
    conf = Confusion(tp=8, fn=2, fp=10, tn=80)
    rates = conf.rates()
    assert rates["recall"] == 0.8 and rates["precision"] == pytest.approx(8 / 18)
    assert rates["gmean"] == pytest.approx((0.8 * 80 / 90) ** 0.5)
    chance = (18 * 10 + 82 * 90) / 100**2
    assert rates["kappa"] == pytest.approx((0.88 - chance) / (1 - chance))


def test_class_decisions_are_counted_beside_the_alerts_and_a_state_saved_before_them_loads() -> None:
    run = Prequential(window=100, budget=0.01)
    verdicts = np.array([[True, False, False, False], [True, True, False, True]])  # alerts, class decisions
    run.observe_many(np.array([1, 0, 0, 1]), np.array([0.9, 0.8, 0.1, 0.2]), verdicts)
    summary, rolling = run.summary(), run.rolling()
    assert (summary["recall"], summary["precision"], summary["class_recall"], summary["class_precision"]) == (0.5, 1.0, 1.0, 2 / 3)
    assert rolling["gmean"] == pytest.approx(math.sqrt(0.5)) and rolling["class_gmean"] == pytest.approx(math.sqrt(0.5))
    assert rolling["kappa"] == pytest.approx(0.5) and rolling["class_kappa"] == pytest.approx(0.5)
    state = pickle.loads(pickle.dumps(run)).__dict__  # as it was saved before: scores and alerts in two rings
    del state["decisions"], state["recent_labels"]
    state["recent"], state["recent_alerts"] = Ring(100), Ring(100)
    state["recent"].push_many(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 0, 0, 1]))
    state["recent_alerts"].push_many(verdicts[0].astype(float), np.array([1, 0, 0, 1]))
    old = Prequential.__new__(Prequential)
    old.__setstate__(state)
    # Their alerts stand for their class decisions: the same rates, then the two part.
    assert {k: v for k, v in old.summary().items() if k.startswith("class_")} == {f"class_{k}": v for k, v in Confusion(1, 0, 2, 1).rates().items()}
    old.observe_many(np.array([1]), np.array([0.7]), np.array([[False], [True]]))
    assert old.decisions == Confusion(tp=2, fp=0, tn=2, fn=1) and old.confusion == Confusion(tp=1, fp=0, tn=2, fn=2)
    assert old.rolling()["class_recall"] == 2 / 3 and old.rolling()["recall"] == 1 / 3
