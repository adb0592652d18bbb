"""The compiled Half-Space Trees: the mass kernel against a plain walk, and river parity on outliers."""

from __future__ import annotations

import numpy as np
import river.anomaly

from stream.halfspace import HalfSpaceTrees
from stream.quality import roc_auc


def reference_mass(hst: HalfSpaceTrees, z: np.ndarray) -> float:
    u = 1.0 / (1.0 + np.exp(-z / 2.0))
    total, limit = 0.0, 0.1 * hst.window
    for t in range(hst.n_trees):
        node = 0
        for depth in range(hst.height + 1):
            total += hst.r_mass[t, node] * 2**depth
            if depth == hst.height or hst.r_mass[t, node] < limit:
                break
            node = 2 * node + 1 if u[hst.features[t, node]] < hst.cuts[t, node] else 2 * node + 2
    return total


def reference_tree(dim: int, height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A tree grown node by node with numpy's own calls: a feature by its range, a cut inside it."""
    features, cuts = np.zeros(2 ** (height + 1) - 1, dtype=np.int64), np.zeros(2 ** (height + 1) - 1)
    limits = np.tile([0.0, 1.0], (dim, 1))

    def grow(node: int, depth: int) -> None:
        if depth == height:
            return
        widths = limits[:, 1] - limits[:, 0]
        feature = int(rng.choice(dim, p=widths / widths.sum()))
        lo, hi = limits[feature]
        features[node], cuts[node] = feature, rng.uniform(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))
        limits[feature, 1] = cuts[node]
        grow(2 * node + 1, depth + 1)
        limits[feature] = cuts[node], hi
        grow(2 * node + 2, depth + 1)
        limits[feature] = lo, hi

    grow(0, 0)
    return features, cuts


def test_trees_are_those_of_numpys_calls_node_by_node() -> None:
    # The compiled builder draws all uniforms at once; the trees and the generator's state after
    # them must be those of one choice() and one uniform() per node (checkpoints hold the generator).
    for dim, height, seed in [(1, 3, 0), (2, 1, 1), (3, 8, 2), (7, 5, 3), (8, 6, 4), (10, 8, 5), (33, 4, 6)]:
        hst = HalfSpaceTrees(n_trees=6, height=height, window=50, seed=seed)
        hst.learn_many(np.zeros((1, dim)))
        rng = np.random.default_rng(seed)
        trees = [reference_tree(dim, height, rng) for _ in range(6)]
        assert np.array_equal(hst.features, np.stack([f for f, _ in trees]))
        assert np.array_equal(hst.cuts, np.stack([c for _, c in trees]))
        assert hst.rng.random() == rng.random()


def test_score_matches_a_plain_walk() -> None:
    rng = np.random.default_rng(0)
    hst = HalfSpaceTrees(n_trees=5, height=6, window=200, seed=1)
    for _ in range(700):
        hst.learn(rng.normal(size=3))
    most = hst.n_trees * hst.window * (2 ** (hst.height + 1) - 1)
    for _ in range(200):
        z = rng.normal(size=3) * 2.0
        assert np.isclose(hst.score(z), 1.0 - reference_mass(hst, z) / most)


def test_outliers_are_found_as_well_as_by_rivers_half_space_trees() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(6_000, 3))
    outlier = rng.random(6_000) < 0.01
    z[outlier] = rng.uniform(-6, 6, size=(int(outlier.sum()), 3))
    ours = HalfSpaceTrees(n_trees=10, height=8, window=250, seed=3)
    theirs = river.anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=3)
    mine, river_scores = [], []
    for row in z:
        mine.append(ours.score(row))
        ours.learn(row)
        x = dict(enumerate((1.0 / (1.0 + np.exp(-row / 2.0))).tolist()))
        river_scores.append(theirs.score_one(x))
        theirs.learn_one(x)
    warm = slice(500, None)
    ours_auc = roc_auc(np.array(mine)[warm], outlier[warm].astype(np.int64))
    river_auc = roc_auc(np.array(river_scores)[warm], outlier[warm].astype(np.int64))
    assert ours_auc > 0.9 and ours_auc > river_auc - 0.03
