"""The balanced cut of a sliding labelled window against sorting the window each time."""

from __future__ import annotations

import pickle

import numpy as np

from stream.balanced import GmeanCut, best_gmean_threshold
from stream.config import ThresholdSettings
from stream.threshold import Threshold
from stream.windows import Ring


def test_best_gmean_needs_both_classes() -> None:
    assert best_gmean_threshold(np.array([0.1, 0.2]), np.array([0, 0])) is None


def gmean_cut_by_sorting(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The reference: every distinct score a cut, all of them sorted, the first best G-mean from the top."""
    pos = int(labels.sum())
    neg = labels.shape[0] - pos
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    gmean = np.sqrt((tp / pos) * (1.0 - fp / neg))
    gmean[~np.r_[s[1:] != s[:-1], True]] = -1.0  # only between distinct scores
    k = int(np.argmax(gmean))
    below = s[k + 1] if k + 1 < s.shape[0] else s[k] - 1e-9
    return float((s[k] + below) / 2.0)


def test_gmean_cut_of_a_ring_equals_sorting_the_window_however_it_was_written() -> None:
    """Ties across classes, coarse and fine scores, windows where every negative outscores every
    positive (no cut catches one alone), wrap-arounds and rewrites of the whole window."""
    rng = np.random.default_rng(11)
    for trial in range(300):
        size = int(rng.integers(2, 80))
        threshold = Threshold(ThresholdSettings(mode="gmean", window=max(100, size), refresh_every=1))
        ring, cut = Ring(size), GmeanCut(size)
        cut.merge_at = int(rng.integers(0, 3 * size))  # the negatives' changes merged now and then
        levels = int(rng.integers(2, 12)) if trial % 2 else 0
        inverted = trial % 5 == 0
        for _ in range(25):
            n = int(rng.integers(1, 2 * size))
            scores = np.round(rng.random(n), 1) if not levels else rng.integers(0, levels, n) / (levels - 1)
            labels = ((scores < 0.3) if inverted else (rng.random(n) < rng.random())).astype(np.int64)
            ring.push_many(scores, labels)
            if rng.random() < 0.7:
                values, kept = ring.filled()
                expected = gmean_cut_by_sorting(values, kept.astype(np.int64))
                assert cut.cut(ring.values, ring.labels, ring.n) == expected, trial
                assert best_gmean_threshold(values, kept) == expected
        restored = pickle.loads(pickle.dumps(cut))  # not saved: sorted afresh at the next ask
        assert restored.cut(ring.values, ring.labels, ring.n) == gmean_cut_by_sorting(*ring.filled())
        for y, p in zip(*ring.filled()[::-1]):
            threshold.observe_label(int(y), float(p))
        assert threshold.balanced == gmean_cut_by_sorting(*ring.filled())  # (refreshed at every label)
