"""The compiled ADWIN cuts where river's does, and the monitor built on it reports only increases."""

from __future__ import annotations

import numpy as np
import pytest
import river.drift

from stream.adwin import Adwin, monitor_update, new_monitors


def piecewise(seed: int, n: int, binary: bool) -> list[float]:
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.02, 0.6, size=6)
    mean = levels[np.arange(n) * 6 // n]
    values = rng.random(n) < mean if binary else np.clip(rng.normal(mean, 0.15), 0.0, 1.0)
    return values.astype(float).tolist()


def detections(detector: object, values: list[float]) -> list[tuple[int, float, int]]:
    found = []
    for i, x in enumerate(values):
        detector.update(x)  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            found.append((i, round(detector.estimation, 9), int(detector.width)))  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("binary", [True, False])
def test_cuts_where_river_cuts_with_the_same_window(seed: int, binary: bool) -> None:
    values = piecewise(seed, 30_000, binary)
    ours = detections(Adwin(delta=0.002), values)
    theirs = detections(river.drift.ADWIN(delta=0.002), values)
    assert len(theirs) >= 2  # the stream does change
    assert ours == theirs


def test_stationary_error_raises_no_alarm() -> None:
    rng = np.random.default_rng(7)
    assert detections(Adwin(delta=0.002), (rng.random(100_000) < 0.05).astype(float).tolist()) == []


def test_monitor_reports_a_rise_of_the_error_and_not_a_fall() -> None:
    stats, buckets, counts = new_monitors([0.002, 0.002])
    rng = np.random.default_rng(3)
    rise = (rng.random(8000) < np.where(np.arange(8000) < 4000, 0.05, 0.4)).astype(float).tolist()
    fall = (rng.random(8000) < np.where(np.arange(8000) < 4000, 0.4, 0.05)).astype(float).tolist()
    rose = [i for i, e in enumerate(rise) if monitor_update(buckets, counts, stats, 0, e)]
    fell = [i for i, e in enumerate(fall) if monitor_update(buckets, counts, stats, 1, e)]
    assert rose and 4000 <= rose[0] < 4300
    assert fell == []
