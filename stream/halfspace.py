"""Half-Space Trees (Tan, Ting & Liu 2011), compiled: the default anomaly score.

The algorithm of river's ``HalfSpaceTrees``: ``n_trees`` random trees of fixed ``height`` cut the
unit cube (a feature picked with chance proportional to its range, a cut drawn in the middle 70% of
it); each node counts the events of the current window (``l_mass``) and keeps the previous window's
count (``r_mass``), which scores: an event in sparsely visited regions of the last window scores
near 1. Trees are heap-ordered arrays (children of node ``i`` are ``2i+1``, ``2i+2``) and scoring and
learning are numba kernels. Standardised values are squashed into (0, 1) by a logistic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

PADDING = 0.15  # cuts stay this share away from a range's ends (river's)


@njit(cache=True, inline="always")
def squash(z: np.ndarray, out: np.ndarray) -> None:
    # A logistic maps z-scores into the unit cube without clipping the tails.
    for i in range(z.shape[0]):
        out[i] = 1.0 / (1.0 + np.exp(-z[i] / 2.0))


@njit(cache=True, inline="always")
def hst_learn(features: np.ndarray, cuts: np.ndarray, l_mass: np.ndarray, u: np.ndarray) -> None:
    height = int(np.log2(features.shape[1] + 1)) - 1
    for t in range(features.shape[0]):
        node = 0
        for _ in range(height):
            l_mass[t, node] += 1.0
            node = 2 * node + 1 if u[features[t, node]] < cuts[t, node] else 2 * node + 2
        l_mass[t, node] += 1.0


@njit(cache=True, inline="always")
def hst_mass(features: np.ndarray, cuts: np.ndarray, r_mass: np.ndarray, u: np.ndarray, size_limit: float) -> float:
    """Sum over trees of ``r_mass * 2**depth`` along the path, stopping where the mass is small."""
    height = int(np.log2(features.shape[1] + 1)) - 1
    total = 0.0
    for t in range(features.shape[0]):
        node, scale, stopped = 0, 1.0, False
        for _ in range(height):
            total += r_mass[t, node] * scale
            if r_mass[t, node] < size_limit:
                stopped = True
                break
            node = 2 * node + 1 if u[features[t, node]] < cuts[t, node] else 2 * node + 2
            scale *= 2.0
        if not stopped:
            total += r_mass[t, node] * scale
    return total


@njit(cache=True)
def hst_scores(features: np.ndarray, cuts: np.ndarray, r_mass: np.ndarray, zs: np.ndarray, window: int, out: np.ndarray) -> None:
    """The score of every row of ``zs`` against the previous window's masses."""
    u = np.empty(zs.shape[1])
    most = features.shape[0] * window * float(features.shape[1])
    for i in range(zs.shape[0]):
        squash(zs[i], u)
        out[i] = 1.0 - hst_mass(features, cuts, r_mass, u, 0.1 * window) / most


@njit(cache=True)
def hst_learn_rows(
    features: np.ndarray, cuts: np.ndarray, l_mass: np.ndarray, r_mass: np.ndarray, zs: np.ndarray, counter: int,
    window: int,
) -> tuple[int, bool]:  # fmt: skip
    """Learn the rows in order; at each full window its masses become the scoring ones.

    Returns the new counter and whether a window turned.
    """
    u = np.empty(zs.shape[1])
    turned = False
    for i in range(zs.shape[0]):
        squash(zs[i], u)
        hst_learn(features, cuts, l_mass, u)
        counter += 1
        if counter == window:
            r_mass[:] = l_mass
            l_mass[:] = 0.0
            counter, turned = 0, True
    return counter, turned


@njit(cache=True)
def grow_trees(dim: int, height: int, draws: np.ndarray, features: np.ndarray, cuts: np.ndarray) -> None:
    """Grow ``features.shape[0]`` random trees, depth first, each node from two of ``draws``.

    Each node takes two uniforms in pre-order (the feature, then the cut), as
    ``rng.choice(dim, p=...)`` and ``rng.uniform(lo, hi)`` would draw them one call at a time:
    the same stream gives the same trees, without two numpy calls per node.
    """
    limits = np.empty((dim, 2))
    cdf = np.empty(dim)
    node, phase = np.zeros(height + 1, dtype=np.int64), np.zeros(height + 1, dtype=np.int64)
    lo, hi = np.zeros(height), np.zeros(height)  # the range each open node cut
    k = 0
    for t in range(features.shape[0]):
        limits[:, 0], limits[:, 1] = 0.0, 1.0
        d, node[0], phase[0] = 0, 0, 0
        while d >= 0:
            if d == height:  # a leaf: nothing to cut
                d -= 1
                continue
            if phase[d] == 0:  # cut this node; go left
                feature = _pick_feature(limits, cdf, draws[k])
                low, high = limits[feature, 0], limits[feature, 1]
                a, b = low + PADDING * (high - low), high - PADDING * (high - low)
                cut = a + (b - a) * draws[k + 1]
                k += 2
                features[t, node[d]], cuts[t, node[d]] = feature, cut
                lo[d], hi[d] = low, high
                limits[feature, 1] = cut
                phase[d], node[d + 1], phase[d + 1] = 1, 2 * node[d] + 1, 0
                d += 1
            elif phase[d] == 1:  # then right
                feature = features[t, node[d]]
                limits[feature, 0], limits[feature, 1] = cuts[t, node[d]], hi[d]
                phase[d], node[d + 1], phase[d + 1] = 2, 2 * node[d] + 2, 0
                d += 1
            else:
                feature = features[t, node[d]]
                limits[feature, 0], limits[feature, 1] = lo[d], hi[d]
                d -= 1


@njit(cache=True, inline="always")
def _pick_feature(limits: np.ndarray, cdf: np.ndarray, u: float) -> int:
    """A feature with chance proportional to its range: numpy's ``choice`` with ``p``."""
    total = 0.0
    for f in range(limits.shape[0]):
        total += limits[f, 1] - limits[f, 0]
    running = 0.0
    for f in range(limits.shape[0]):
        running += (limits[f, 1] - limits[f, 0]) / total
        cdf[f] = running
    picked = 0
    for f in range(limits.shape[0]):
        if cdf[f] / cdf[-1] <= u:
            picked = f + 1
    return picked


class HalfSpaceTrees:
    """``score(z)`` in [0, 1] (0 during the first window), ``learn(z)`` from normal events.

    >>> import numpy as np
    >>> hst = HalfSpaceTrees(n_trees=10, height=6, window=100, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(300):
    ...     hst.learn(rng.normal(size=2) * 0.3)
    >>> hst.score(np.array([6.0, -6.0])) > hst.score(np.zeros(2))
    True
    """

    def __init__(self, n_trees: int, height: int, window: int, seed: int) -> None:
        self.n_trees, self.height, self.window = n_trees, height, window
        self.rng = np.random.default_rng(seed)
        self.counter = 0
        self.first_window = True
        self.features = np.zeros((0, 0), dtype=np.int64)

    def _build(self, dim: int) -> None:
        size = 2 ** (self.height + 1) - 1  # heap order; the leaves' entries stay unused
        self.features, self.cuts = np.zeros((self.n_trees, size), dtype=np.int64), np.zeros((self.n_trees, size))
        draws = self.rng.random(self.n_trees * 2 * (2**self.height - 1))
        grow_trees(dim, self.height, draws, self.features, self.cuts)
        self.l_mass = np.zeros_like(self.cuts)
        self.r_mass = np.zeros_like(self.cuts)

    def score(self, z: np.ndarray) -> float:
        return float(self.score_many(z[None, :])[0])

    def score_many(self, zs: np.ndarray) -> np.ndarray:
        out = np.zeros(zs.shape[0])
        if not self.first_window:
            hst_scores(self.features, self.cuts, self.r_mass, zs, self.window, out)
        return out

    def learn(self, z: np.ndarray) -> None:
        self.learn_many(z[None, :])

    def learn_many(self, zs: np.ndarray) -> None:
        """Learn the rows in order; each full window's counts score the next window."""
        if not zs.shape[0]:
            return
        if not self.features.shape[0]:
            self._build(zs.shape[1])
        self.counter, turned = hst_learn_rows(
            self.features, self.cuts, self.l_mass, self.r_mass, zs, self.counter, self.window
        )  # fmt: skip
        self.first_window = self.first_window and not turned
