"""ADWIN (Bifet & Gavaldà 2007, the ADWIN2 bucket version), compiled, for the class-error monitors.

The window of recent values is kept as an exponential histogram: row ``r`` holds up to
``MAX_BUCKETS`` buckets of ``2**r`` values each (their sum and variance), so a window of ``W`` values
costs O(log W) memory. Every ``CLOCK`` values (once past ``GRACE``), every split of the window into an
older and a newer part is tested; when their means differ by more than the Hoeffding-style bound
for confidence ``delta``, the oldest bucket is dropped and a drift is reported. The parameters are
river's and MOA's defaults; as in river, a detector starts an empty window after a drift.

A *monitor* is a detector on one class's error that reports only increases: it compares the
window's mean after a cut with the mean since its previous drift (a model that gets better is no
drift). Monitors live in plain arrays (``stats``, ``buckets``, ``counts``; one row per monitor) so
that a micro-batch of errors runs through several monitors in one kernel call and the state
pickles with the checkpoint.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MAX_BUCKETS = 5
CLOCK = 32
GRACE = 10
MIN_WINDOW = 5
ROWS = 48  # 5 * 2**48 values: more than any stream
# stats[j, :]
TOTAL, VARIANCE, WIDTH, TICK, N_ROWS, SINCE_TOTAL, SINCE_N, DELTA, CUT = range(9)


def new_monitors(deltas: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(stats, buckets, counts)`` of empty monitors with these confidences."""
    stats = np.zeros((len(deltas), 9))
    stats[:, DELTA] = deltas
    stats[:, N_ROWS] = 1
    return stats, np.zeros((len(deltas), ROWS, MAX_BUCKETS + 1, 2)), np.zeros((len(deltas), ROWS), dtype=np.int64)


@njit(cache=True, inline="always")
def _compress(buckets: np.ndarray, counts: np.ndarray, stats: np.ndarray, j: int) -> None:
    """A full row merges its two oldest buckets into one of the next row."""
    r = 0
    while r < ROWS - 1 and counts[j, r] == MAX_BUCKETS + 1:
        size = float(1 << r)
        t0, v0 = buckets[j, r, 0, 0], buckets[j, r, 0, 1]
        t1, v1 = buckets[j, r, 1, 0], buckets[j, r, 1, 1]
        diff = t0 / size - t1 / size
        k = counts[j, r + 1]
        buckets[j, r + 1, k, 0] = t0 + t1
        buckets[j, r + 1, k, 1] = v0 + v1 + size * size * diff * diff / (2.0 * size)
        counts[j, r + 1] += 1
        for k in range(MAX_BUCKETS - 1):  # a loop, not a slice copy: overlapping slices copy via a temporary
            buckets[j, r, k, 0], buckets[j, r, k, 1] = buckets[j, r, k + 2, 0], buckets[j, r, k + 2, 1]
        counts[j, r] -= 2
        stats[j, N_ROWS] = max(stats[j, N_ROWS], r + 2)
        r += 1


@njit(cache=True, inline="always")
def _cut(n0: float, n1: float, u0: float, u1: float, variance: float, dd: float) -> bool:
    """Whether the means of the older ``n0`` and newer ``n1`` values differ by more than the bound
    (``variance``: the window's per value; ``dd``: log(2 log(width) / delta), both fixed for a scan)."""
    m = 1.0 / (n0 - MIN_WINDOW + 1.0) + 1.0 / (n1 - MIN_WINDOW + 1.0)
    epsilon = math.sqrt(2.0 * m * variance * dd) + 2.0 / 3.0 * dd * m
    return abs(u0 / n0 - u1 / n1) > epsilon


@njit(cache=True, inline="always")
def _drop_oldest(buckets: np.ndarray, counts: np.ndarray, stats: np.ndarray, j: int) -> None:
    r = int(stats[j, N_ROWS]) - 1
    size = float(1 << r)
    t, v = buckets[j, r, 0, 0], buckets[j, r, 0, 1]
    width, total = stats[j, WIDTH], stats[j, TOTAL]
    rest = width - size
    stats[j, WIDTH] = rest
    stats[j, TOTAL] = total - t
    if rest > 0.0:
        diff = t / size - (total - t) / rest
        stats[j, VARIANCE] -= v + size * rest * diff * diff / width
    else:
        stats[j, VARIANCE] = 0.0
    for k in range(MAX_BUCKETS):
        buckets[j, r, k, 0], buckets[j, r, k, 1] = buckets[j, r, k + 1, 0], buckets[j, r, k + 1, 1]
    counts[j, r] -= 1
    if counts[j, r] == 0 and r > 0:
        stats[j, N_ROWS] = r


@njit(cache=True)
def _detect(buckets: np.ndarray, counts: np.ndarray, stats: np.ndarray, j: int) -> bool:
    drift = False
    cutting = True
    while cutting:
        cutting = False
        n0, u0 = 0.0, 0.0
        n1, u1 = stats[j, WIDTH], stats[j, TOTAL]
        width = stats[j, WIDTH]
        variance, dd = stats[j, VARIANCE] / width, math.log(2.0 * math.log(width) / stats[j, DELTA])
        for r in range(int(stats[j, N_ROWS]) - 1, -1, -1):  # oldest rows first
            size = float(1 << r)
            for k in range(counts[j, r]):
                n0 += size
                n1 -= size
                u0 += buckets[j, r, k, 0]
                u1 -= buckets[j, r, k, 0]
                if n1 <= 0.0:
                    break
                if n0 >= MIN_WINDOW and n1 >= MIN_WINDOW and _cut(n0, n1, u0, u1, variance, dd):
                    cutting = drift = True
                    break
            if cutting or n1 <= 0.0:
                break
        if cutting:
            _drop_oldest(buckets, counts, stats, j)
            if stats[j, WIDTH] <= 2.0 * MIN_WINDOW:
                cutting = False
    return drift


@njit(cache=True, inline="always")
def adwin_update(buckets: np.ndarray, counts: np.ndarray, stats: np.ndarray, j: int, x: float) -> bool:
    """Add ``x`` to detector ``j``; True when its window was cut (a change)."""
    if stats[j, CUT]:  # the window after a drift was there to be read; now it starts afresh
        stats[j, TOTAL] = stats[j, VARIANCE] = stats[j, WIDTH] = stats[j, TICK] = stats[j, CUT] = 0.0
        stats[j, N_ROWS] = 1.0
        counts[j, :] = 0
    width = stats[j, WIDTH] + 1.0
    if width > 1.0:
        mean = stats[j, TOTAL] / (width - 1.0)
        stats[j, VARIANCE] += (width - 1.0) * (x - mean) * (x - mean) / width
    stats[j, WIDTH] = width
    stats[j, TOTAL] += x
    k = counts[j, 0]
    buckets[j, 0, k, 0], buckets[j, 0, k, 1] = x, 0.0
    counts[j, 0] += 1
    _compress(buckets, counts, stats, j)
    stats[j, TICK] += 1.0
    if stats[j, TICK] % CLOCK == 0 and width > GRACE and _detect(buckets, counts, stats, j):
        stats[j, CUT] = 1.0
        return True
    return False


@njit(cache=True, inline="always")
def monitor_update(buckets: np.ndarray, counts: np.ndarray, stats: np.ndarray, j: int, error: float) -> bool:
    """Feed one error to monitor ``j``; True on a drift that *raised* the error."""
    before = stats[j, SINCE_TOTAL] / stats[j, SINCE_N] if stats[j, SINCE_N] > 0 else 0.0
    stats[j, SINCE_TOTAL] += error
    stats[j, SINCE_N] += 1.0
    if not adwin_update(buckets, counts, stats, j, error):
        return False
    after = stats[j, TOTAL] / stats[j, WIDTH]
    stats[j, SINCE_TOTAL], stats[j, SINCE_N] = stats[j, TOTAL], stats[j, WIDTH]  # what the window kept
    return bool(after > before)


class Adwin:
    """One ADWIN detector with river's interface (``update``, ``drift_detected``, ``estimation``).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> detector = Adwin(delta=0.002)
    >>> hits = []
    >>> for i in range(4000):
    ...     detector.update(float(rng.random() < (0.1 if i < 2000 else 0.6)))
    ...     if detector.drift_detected:
    ...         hits.append(i)
    >>> 2000 <= hits[0] < 2200
    True
    """

    def __init__(self, delta: float = 0.002) -> None:
        self.stats, self.buckets, self.counts = new_monitors([delta])
        self.drift_detected = False

    def update(self, x: float) -> None:
        self.drift_detected = adwin_update(self.buckets, self.counts, self.stats, 0, float(x))

    @property
    def estimation(self) -> float:
        width = self.stats[0, WIDTH]
        return float(self.stats[0, TOTAL] / width) if width else 0.0

    @property
    def width(self) -> int:
        return int(self.stats[0, WIDTH])


@njit(cache=True)
def watch_run(
    stats: tuple[np.ndarray, ...], buckets: tuple[np.ndarray, ...], counts: tuple[np.ndarray, ...],
    cooldowns: np.ndarray, ys: np.ndarray, errors: np.ndarray, per_class: bool, fired: np.ndarray,
    positives_to_stop: int,
) -> int:  # fmt: skip
    """Several models' monitor banks (``AdwinMonitors`` layout) over a run of labelled events.

    Runs until an event that needs a decision: the run's ``positives_to_stop``-th positive (a
    ranking, or a trial's verdict, happens there) or one where a monitor fired, and returns the
    events fed, that one included; ``fired[c]`` then says what model ``c``'s monitors said of it (1
    warning, 2 drift, 3 both). Models in ``cooldowns`` skip.
    """
    for i in range(ys.shape[0]):
        if ys[i] == 1:
            positives_to_stop -= 1
        stop = positives_to_stop == 0
        for c in range(len(stats)):
            fired[c] = 0
            if cooldowns[c] > 0:
                cooldowns[c] -= 1
                continue
            k = ys[i] if per_class else 0
            warn = monitor_update(buckets[c], counts[c], stats[c], 2 + k, errors[c, i])
            drift = monitor_update(buckets[c], counts[c], stats[c], k, errors[c, i])
            fired[c] = int(warn) + 2 * int(drift)
            stop = stop or fired[c] > 0
        if stop:
            return i + 1
    return int(ys.shape[0])
