"""The compiled Hoeffding trees: the split kernel against a plain reference, river parity, bounds."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import river.tree

from stream.quality import average_precision
from stream.trees import GMAX, GMIN, GW, HoeffdingForest, _settle, best_split


def corner_stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """About 5% positives in a corner of two of four features (a box: two axis cuts)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    y = (z[:, 0] > 0.9) & (z[:, 1] > 0.5)
    return z, y.astype(np.int64)


def settle_all(forest: HoeffdingForest) -> None:
    """Work out every leaf's naive-Bayes caches (a one-class leaf leaves them for later)."""
    for t in range(forest.n_trees):
        for s in range(int(forest.sizes[t, 1])):
            for c in (0, 1):
                _settle(forest.leaves, forest.gauss, forest.masks, t, s, c)


def reference_gain(gauss: np.ndarray, d: int, cut: float) -> float:
    """Information gain of ``x[d] <= cut`` from the leaf's Gaussians (what they saw, before and after
    the cut), written out plainly."""

    def below(c: int) -> float:
        w, mean, m2, lo, hi = gauss[c, :5, d]
        if w <= 0 or cut < lo:
            return 0.0
        if cut >= hi:
            return float(w)
        sd = math.sqrt(m2 / (w - 1)) if w > 1 else 0.0
        return float(w) * 0.5 * (1 + math.erf((cut - mean) / (sd * math.sqrt(2)))) if sd else float(w) * (cut >= mean)

    def entropy(a: float, b: float) -> float:
        return -sum(v / (a + b) * math.log2(v / (a + b)) for v in (a, b) if v > 0)

    left = [below(0), below(1)]
    right = [gauss[0, GW, d] - left[0], gauss[1, GW, d] - left[1]]
    total = sum(left) + sum(right)
    if min(sum(left), sum(right)) <= 0.01 * total:
        return -math.inf
    children = (sum(left) * entropy(*left) + sum(right) * entropy(*right)) / total
    return entropy(gauss[0, GW, d], gauss[1, GW, d]) - children


@pytest.mark.parametrize("after_a_split", [False, True])
def test_best_split_matches_the_reference(after_a_split: bool) -> None:
    """At the root, and at a leaf that also holds the class weights its parent's split sent it
    (they are not what its Gaussians saw: the gain must not mix the two)."""
    z, y = corner_stream(6_000, seed=1)
    forest = HoeffdingForest(1, grace_period=300 if after_a_split else 10**9, bagging=False)
    for row, label in zip(z, y):
        forest.learn(row, int(label), 1.0)
        if forest.n_leaves == 2:
            forest.params[0] = 10**9  # no more splits: the two leaves learn on
    slot = int(after_a_split)  # the root's leaf; after the split, the right child (it has both classes)
    assert forest.n_leaves == 1 + after_a_split and forest.gauss[0, slot, 1, GW, 0] > 50
    assert (forest.leaves[0, slot, :2].sum() > forest.gauss[0, slot, :, GW, 0].sum()) == after_a_split
    leaf = forest.gauss[0, slot]
    feature, cut, best, second, _ = best_split(forest.leaves, forest.gauss, forest.masks, 0, slot)
    gains = []
    for d in range(z.shape[1]):
        lo, hi = min(leaf[:, GMIN, d]), max(leaf[:, GMAX, d])
        cuts = [lo + (hi - lo) * i / 11 for i in range(1, 11)]
        gains.append(max((reference_gain(leaf, d, c), c) for c in cuts))
    order = sorted(range(len(gains)), key=lambda d: -gains[d][0])
    assert feature == order[0] and math.isclose(cut, gains[order[0]][1])
    assert math.isclose(best, gains[order[0]][0], rel_tol=1e-9)
    assert math.isclose(second, gains[order[1]][0], rel_tol=1e-9)


def prequential(model: HoeffdingForest | river.tree.HoeffdingTreeClassifier, z: np.ndarray, y: np.ndarray) -> float:
    scores = []
    for row, label in zip(z, y):
        x = {f"f{i}": float(v) for i, v in enumerate(row)}
        scores.append(model.predict_proba_one(x).get(1, 0.0))
        model.learn_one(x, int(label))
    return average_precision(np.array(scores), y)


def test_one_tree_ranks_as_rivers_hoeffding_tree_does() -> None:
    z, y = corner_stream(6_000, seed=2)
    ours = prequential(HoeffdingForest(1, grace_period=100, bagging=False), z, y)
    theirs = prequential(river.tree.HoeffdingTreeClassifier(grace_period=100, max_share_to_split=1.0), z, y)
    assert ours > 0.8 and abs(ours - theirs) < 0.01  # the same algorithm (equal here to 1e-9)


def test_a_forest_beats_one_tree_on_average() -> None:
    gains = []
    for seed in (2, 3, 4):
        z, y = corner_stream(6_000, seed=seed)
        one = prequential(HoeffdingForest(1, grace_period=100, bagging=False), z, y)
        gains.append(prequential(HoeffdingForest(10, grace_period=100, seed=seed), z, y) - one)
    assert np.mean(gains) > 0.0


def test_trees_stop_growing_at_max_leaves_and_memory_stays_bounded() -> None:
    z, y = corner_stream(20_000, seed=4)
    forest = HoeffdingForest(3, grace_period=20, max_leaves=8, seed=0)
    for row, label in zip(z, y):
        forest.learn(row, int(label), 1.0)
    assert forest.sizes[:, 1].max() == 8  # grew to the bound and stopped
    assert forest.leaves.shape[1] == 8 and forest.nodes.shape[1] == 16


def test_a_pickled_forest_continues_exactly() -> None:
    z, y = corner_stream(4_000, seed=5)
    forest = HoeffdingForest(5, grace_period=50, subspace=2, seed=9)
    for row, label in zip(z[:2_000], y[:2_000]):
        forest.learn(row, int(label), 1.0)
    copy = pickle.loads(pickle.dumps(forest))
    for row, label in zip(z[2_000:], y[2_000:]):
        assert forest.proba(row) == copy.proba(row)
        forest.learn(row, int(label), 1.0)
        copy.learn(row, int(label), 1.0)
    assert forest.n_leaves == copy.n_leaves > 5


def test_subspaces_hold_the_chosen_number_of_features() -> None:
    z, y = corner_stream(4_000, seed=6)
    forest = HoeffdingForest(4, grace_period=30, subspace=2, seed=3)
    for row, label in zip(z, y):
        forest.learn(row, int(label), 1.0)
    used = forest.masks[:, : forest.sizes[:, 1].min()].sum(axis=2)
    assert (used == 2).all()


def test_a_batch_learns_and_scores_exactly_as_event_by_event() -> None:
    rng = np.random.default_rng(4)
    zs = rng.normal(size=(3000, 4))
    ys = (zs[:, 0] + 0.5 * zs[:, 1] > 1.2).astype(np.int64)
    ws = rng.uniform(0.5, 3.0, size=3000)
    one, many = (HoeffdingForest(5, 50, max_leaves=64, seed=3) for _ in range(2))
    for z, y, w in zip(zs, ys, ws):
        one.learn(z, int(y), float(w))
    for start in range(0, 3000, 256):  # batches across the arrays' growth and the leaf cap
        many.learn_many(zs[start : start + 256], ys[start : start + 256], ws[start : start + 256])
    assert one.n_leaves == many.n_leaves > 5
    assert np.array_equal(many.proba_many(zs[:500]), np.array([one.proba(z) for z in zs[:500]]))


def saved_before_layout_2(forest: HoeffdingForest) -> dict[str, object]:
    """The forest's state as a build before checkpoint format 6 saved it: Gaussians feature by
    feature (gauss[..., feature, field]), no log-odds per leaf, no ``layout``."""
    state = forest.__dict__.copy()
    del state["layout"]
    state["gauss"] = np.ascontiguousarray(forest.gauss.swapaxes(3, 4))
    state["leaves"] = forest.leaves[..., :7].copy()
    state["rng"] = pickle.loads(pickle.dumps(forest.rng))
    return state


def test_a_forest_saved_feature_by_feature_loads_and_goes_on_exactly() -> None:
    """Checkpoint format 5 kept each Gaussian's fields together and no log-odds per leaf; such a
    forest loads into today's layout and scores and learns to the bit as the one it was saved from."""
    z, y = corner_stream(6000, seed=4)
    forest = HoeffdingForest(n_trees=4, grace_period=100, subspace=3, seed=2)
    forest.learn_many(z[:4000], y[:4000], np.ones(4000))
    old = HoeffdingForest.__new__(HoeffdingForest)
    old.__setstate__(pickle.loads(pickle.dumps(saved_before_layout_2(forest))))
    assert np.array_equal(old.leaves, forest.leaves) and np.array_equal(old.gauss, forest.gauss)
    for f in (forest, old):
        f.learn_many(z[4000:5000], y[4000:5000], np.ones(1000))
    assert np.array_equal(old.proba_many(z[5000:]), forest.proba_many(z[5000:]))


def test_a_forest_saved_with_per_gaussian_normalisers_loads_and_goes_on_alike() -> None:
    """Checkpoint format 4 kept log(sqrt(2 pi var)) per Gaussian (field 6) and 5 leaf fields; such a
    forest loads into the per-class sums and scores and learns as the one it was saved from."""
    z, y = corner_stream(6000, seed=4)
    forest = HoeffdingForest(n_trees=4, grace_period=100, subspace=3, seed=2)
    forest.learn_many(z[:4000], y[:4000], np.ones(4000))
    state = saved_before_layout_2(forest)
    g = state["gauss"]
    assert isinstance(g, np.ndarray)
    var = np.where(g[..., GW] > 1, g[..., 2] / np.maximum(g[..., GW] - 1, 1e-300), 0.0)
    per_gaussian = np.where(var > 0, 0.5 * math.log(2 * math.pi) + 0.5 * np.log(np.where(var > 0, var, 1.0)), 0.0)
    state["gauss"] = np.concatenate([g, per_gaussian[..., None]], axis=-1)
    state["leaves"] = forest.leaves[..., :5].copy()
    old = HoeffdingForest.__new__(HoeffdingForest)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.leaves.shape == forest.leaves.shape and old.gauss.shape == forest.gauss.shape
    settle_all(forest)  # format 4 kept every normaliser worked out
    np.testing.assert_allclose(old.leaves, forest.leaves, rtol=1e-12, atol=1e-12)
    for f in (forest, old):
        f.learn_many(z[4000:5000], y[4000:5000], np.ones(1000))
    np.testing.assert_allclose(old.proba_many(z[5000:]), forest.proba_many(z[5000:]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("rate", [1.0, 3.0])
def test_each_tree_learns_an_event_poisson_rate_times(rate: float) -> None:
    z, y = corner_stream(4000, seed=6)
    forest = HoeffdingForest(n_trees=8, grace_period=100_000, rate=rate, seed=3)  # no split: the root holds it all
    forest.learn_many(z, y, np.ones(4000))
    per_tree = forest.leaves[:, 0, :2].sum(axis=1) / 4000
    assert abs(per_tree.mean() - rate) < 0.05 * rate and per_tree.std() > 0


def test_frexp_from_the_bits_is_libms() -> None:
    from stream.trees import _frexp

    rng = np.random.default_rng(0)
    values = [*rng.lognormal(0.0, 60.0, 20_000).tolist(), 5e-324, 1e-310, 0.0, 0.5, 1.0, 3.0, 2.0**1023, math.inf]
    for v in values:
        assert _frexp(v) == math.frexp(v), v


def test_naive_bayes_caches_that_wait_at_one_class_leaves_never_show() -> None:
    """A leaf holding one class keeps its Gaussians' 1 / (2 var) and normaliser for later; a forest
    whose caches are all worked out after every batch (as they were eagerly) scores alike, and its
    arrays are those of the lazy one once that one's are worked out too."""
    rng = np.random.default_rng(8)
    z = rng.normal(size=(6_000, 5))
    y = ((z[:, 0] > 1.6) & (z[:, 1] > 0.0) | (rng.random(6_000) < 0.003)).astype(np.int64)  # about 3%
    lazy, eager = (HoeffdingForest(6, grace_period=60, subspace=3, seed=2) for _ in range(2))
    for start in range(0, 6_000, 200):
        part = slice(start, start + 200)
        assert np.array_equal(lazy.proba_many(z[part]), eager.proba_many(z[part]))
        for forest in (lazy, eager):
            forest.learn_many(z[part], y[part], np.where(y[part] == 1, 5.0, 1.0))
        settle_all(eager)
    assert lazy.n_leaves > 6 * 4
    settle_all(lazy)
    assert np.array_equal(lazy.leaves, eager.leaves) and np.array_equal(lazy.gauss, eager.gauss)
