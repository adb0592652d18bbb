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


def build_tree(dim: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random tree's split features and cuts, in heap order (leaves' entries unused)."""
    size = 2 ** (height + 1) - 1
    features, cuts = np.zeros(size, dtype=np.int64), np.zeros(size)
    limits = np.tile([0.0, 1.0], (dim, 1))

    def grow(node: int, depth: int) -> None:
        if depth == height:
            return
        widths = limits[:, 1] - limits[:, 0]
        feature = int(rng.choice(dim, p=widths / widths.sum()))
        lo, hi = limits[feature]
        cut = rng.uniform(lo + PADDING * (hi - lo), hi - PADDING * (hi - lo))
        features[node], cuts[node] = feature, cut
        limits[feature, 1] = cut
        grow(2 * node + 1, depth + 1)
        limits[feature] = cut, hi
        grow(2 * node + 2, depth + 1)
        limits[feature] = lo, hi

    grow(0, 0)
    return features, cuts


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
        trees = [build_tree(dim, self.height, self.rng) for _ in range(self.n_trees)]
        self.features = np.stack([f for f, _ in trees])
        self.cuts = np.stack([c for _, c in trees])
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
