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
