"""Hoeffding trees and an online-bagged forest of them, compiled: the default fraud model.

The algorithm is river's ``HoeffdingTreeClassifier`` (VFDT: per leaf, one Gaussian per class and
numeric feature; every ``grace_period`` of weight, ten candidate thresholds per feature are rated by
information gain and the best split is taken once the Hoeffding bound separates it from the
runner-up; leaves predict naive-Bayes-adaptively; one difference: a gain is measured on the weight
the leaf's Gaussians saw, see ``best_split``) inside Oza's online bagging (each tree learns an
event Poisson(1) times) - the model family river's ``BaggingClassifier`` builds. Here the trees live
in preallocated numpy arrays and scoring and learning are numba kernels, so an event costs no Python
objects, and memory is bounded: a tree stops splitting at ``max_leaves`` (its leaves keep learning).

Optional random subspaces (ARF's source of diversity): each new leaf considers a seeded random
subset of the features, drawn from a hash of (seed, tree, leaf) so a resumed run draws the same.

Layout, for T trees, M = 2 * capacity nodes, L = capacity leaves, D features:

- ``nodes[T, M, 3]``: split feature (-1 at a leaf), left child (right = left + 1), leaf slot;
- ``thresholds[T, M]``: ``x[feature] <= threshold`` goes left;
- ``leaves[T, L, 8]``: class-0 weight, class-1 weight, weight at the last split attempt, weight the
  majority-class rule got right, weight naive Bayes got right, per class the sum over its
  Gaussians of log(sqrt(2 pi var)) (naive Bayes' normalisers), and log(class-0 / class-1 weight):
  scoring takes no logarithm;
- ``gauss[T, L, 2, 6, D]``: per class, field by field over the features: weight, mean, M2, min,
  max, 1 / (2 var) (a field's values side by side: naive Bayes reads two rows, not every field;
  1 / (2 var) and the normalisers of a leaf that holds one class wait until it holds both);
- ``masks[T, L, D]``: 1 where the leaf uses the feature;
- ``sizes[T, 2]``: nodes and leaves in use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from stream.draws import pcg64_state, poisson_weights, store_pcg64_state

F, LEFT, SLOT = 0, 1, 2  # nodes[..., :]
C0, C1, LAST, MC_OK, NB_OK, LOG_NORM0, LOG_ODDS = 0, 1, 2, 3, 4, 5, 7  # leaves[..., :]; LOG_NORM0 + class
L_FIELDS = 8
GW, GMEAN, GM2, GMIN, GMAX = 0, 1, 2, 3, 4  # gauss[t, s, class, :]
# Cached for naive Bayes, refreshed whenever that Gaussian learns: 1 / (2 var) (0 while the
# variance is 0: such a Gaussian abstains, as in river, and is left out of its class's LOG_NORM).
GHALF_PRECISION = 5
G_FIELDS = 6
N_SPLITS = 10  # candidate thresholds per feature, evenly spaced in the observed range (river's)
MIN_BRANCH_FRACTION = 0.01  # a split must send at least this share of the weight to two branches
_HALF_LOG_TAU = 0.5 * math.log(2.0 * math.pi)
_LN2 = math.log(2.0)


@njit(cache=True, inline="always")
def find_leaf(nodes: np.ndarray, thresholds: np.ndarray, t: int, z: np.ndarray) -> int:
    node = 0
    while nodes[t, node, F] >= 0:
        left = nodes[t, node, LEFT]
        node = left if z[nodes[t, node, F]] <= thresholds[t, node] else left + 1
    return node


# Walks interleaved: a walk down a tree is a chain of dependent loads (node, feature value,
# threshold), so one walk at a time leaves the core waiting on memory; several independent walks
# in turn keep it busy (8: 2.5x faster than one at a time on a 20-tree forest).
LANES = 8


@njit(cache=True)
def walk(nodes: np.ndarray, thresholds: np.ndarray, zs: np.ndarray, out: np.ndarray) -> None:
    """``out[i, t]``: the leaf node row ``i`` reaches in tree ``t`` (``find_leaf``), LANES walks at a
    time; a walk that reaches its leaf hands its lane to the next (row, tree)."""
    trees, jobs = out.shape[1], out.size
    lane_row = np.full(LANES, -1, dtype=np.int64)
    lane_tree = np.zeros(LANES, dtype=np.int64)
    lane_node = np.zeros(LANES, dtype=np.int64)
    job = min(LANES, jobs)
    for k in range(job):
        lane_row[k], lane_tree[k] = k // trees, k % trees
    live = job
    while live:
        for k in range(LANES):
            i = lane_row[k]
            if i < 0:
                continue
            t, node = lane_tree[k], lane_node[k]
            f = nodes[t, node, F]
            if f >= 0:
                lane_node[k] = nodes[t, node, LEFT] + (0 if zs[i, f] <= thresholds[t, node] else 1)
                continue
            out[i, t], lane_node[k] = node, 0
            if job < jobs:
                lane_row[k], lane_tree[k], job = job // trees, job % trees, job + 1
            else:
                lane_row[k], live = -1, live - 1


def _bitcast(to: Any, result: Any, argument: Any) -> Any:
    """A numba intrinsic: the same 64 bits read as another type (no conversion)."""

    def typing(typingctx: Any, x: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], to)

        return result(argument), codegen

    return intrinsic(typing)


_float_bits: Any = _bitcast(ir.IntType(64), types.int64, types.float64)
_bits_float: Any = _bitcast(ir.DoubleType(), types.float64, types.int64)


@njit(cache=True, inline="always")
def _frexp(x: float) -> tuple[float, int]:
    """``math.frexp`` from the bits for a normal number (libm's is a call: a tenth of learning an
    event); zero, subnormals, inf and nan go to libm."""
    bits = _float_bits(x)
    exponent = (bits >> 52) & 0x7FF
    if exponent == 0 or exponent == 0x7FF:
        return math.frexp(x)
    return _bits_float((bits & ~(0x7FF << 52)) | (1022 << 52)), exponent - 1022


@njit(cache=True, inline="always")
def _variance(g: np.ndarray, d: int) -> float:
    return g[GM2, d] / (g[GW, d] - 1.0) if g[GW, d] > 1.0 else 0.0


@njit(cache=True, inline="always")
def naive_bayes_lead(leaves: np.ndarray, gauss: np.ndarray, t: int, s: int, z: np.ndarray) -> float:
    """Naive Bayes' log-odds of class 0 at a leaf that holds both classes. A degenerate Gaussian
    abstains, as in river (its 1 / (2 var) is 0, as is that of a feature the leaf does not use)."""
    lead = float(leaves[t, s, LOG_ODDS] - leaves[t, s, LOG_NORM0] + leaves[t, s, LOG_NORM0 + 1])
    for d in range(z.shape[0]):
        diff = z[d] - gauss[t, s, 0, GMEAN, d]
        lead -= diff * diff * gauss[t, s, 0, GHALF_PRECISION, d]
    for d in range(z.shape[0]):
        diff = z[d] - gauss[t, s, 1, GMEAN, d]
        lead += diff * diff * gauss[t, s, 1, GHALF_PRECISION, d]
    return lead


@njit(cache=True, inline="always")
def naive_bayes_p1(leaves: np.ndarray, gauss: np.ndarray, t: int, s: int, z: np.ndarray) -> float:
    """P(class 1) by naive Bayes on the leaf's Gaussians."""
    if leaves[t, s, C1] <= 0.0:
        return 0.0
    if leaves[t, s, C0] <= 0.0:
        return 1.0
    return 1.0 / (1.0 + math.exp(min(naive_bayes_lead(leaves, gauss, t, s, z), 700.0)))


@njit(cache=True, inline="always")
def leaf_p1(leaves: np.ndarray, gauss: np.ndarray, t: int, s: int, z: np.ndarray) -> float:
    """The leaf's P(class 1): naive Bayes while it has been at least as right as the class counts."""
    total = leaves[t, s, C0] + leaves[t, s, C1]
    if total <= 0.0:
        return -1.0  # no opinion yet
    if leaves[t, s, NB_OK] >= leaves[t, s, MC_OK]:
        return naive_bayes_p1(leaves, gauss, t, s, z)
    return float(leaves[t, s, C1] / total)


@njit(cache=True)
def forest_p1(
    nodes: np.ndarray, thresholds: np.ndarray, leaves: np.ndarray, gauss: np.ndarray, z: np.ndarray
) -> float:
    """Mean P(class 1) of the trees that have an opinion (0 before any has)."""
    total, voters = 0.0, 0
    for t in range(nodes.shape[0]):
        p = leaf_p1(leaves, gauss, t, nodes[t, find_leaf(nodes, thresholds, t, z), SLOT], z)
        if p >= 0.0:
            total += p
            voters += 1
    return total / voters if voters else 0.0


@njit(cache=True)
def forest_p1_many(
    nodes: np.ndarray, thresholds: np.ndarray, leaves: np.ndarray, gauss: np.ndarray, zs: np.ndarray, out: np.ndarray
) -> None:
    """``forest_p1`` of every row of ``zs`` into ``out`` (the walks first, interleaved)."""
    reached = np.empty((zs.shape[0], nodes.shape[0]), dtype=np.int64)
    walk(nodes, thresholds, zs, reached)
    for i in range(zs.shape[0]):
        z = zs[i]
        total, voters = 0.0, 0
        for t in range(nodes.shape[0]):
            p = leaf_p1(leaves, gauss, t, nodes[t, reached[i, t], SLOT], z)
            if p >= 0.0:
                total += p
                voters += 1
        out[i] = total / voters if voters else 0.0


@njit(cache=True, inline="always")
def _entropy(a: float, b: float) -> float:
    total = a + b
    h = 0.0
    for v in (a, b):
        if v > 0.0:
            h -= v / total * math.log2(v / total)
    return h


@njit(cache=True, inline="always")
def _weight_below(g: np.ndarray, d: int, sd: float, cut: float) -> float:
    """Weight of this class's Gaussian of feature ``d`` (standard deviation ``sd``) at or below ``cut``."""
    if g[GW, d] <= 0.0 or cut < g[GMIN, d]:
        return 0.0
    if cut >= g[GMAX, d]:
        return float(g[GW, d])
    if sd <= 0.0:
        return g[GW, d] if cut >= g[GMEAN, d] else 0.0
    return float(g[GW, d]) * 0.5 * (1.0 + math.erf((cut - g[GMEAN, d]) / (sd * math.sqrt(2.0))))


@njit(cache=True, inline="always")
def _gain(parent: float, l0: float, l1: float, r0: float, r1: float) -> float:
    total = l0 + l1 + r0 + r1
    if total <= 0.0 or min(l0 + l1, r0 + r1) <= MIN_BRANCH_FRACTION * total:
        return -np.inf
    return parent - ((l0 + l1) * _entropy(l0, l1) + (r0 + r1) * _entropy(r0, r1)) / total


@njit(cache=True)
def best_split(leaves: np.ndarray, gauss: np.ndarray, masks: np.ndarray, t: int, s: int) -> tuple[int, float, float, float, np.ndarray]:
    """(feature, threshold, best gain, runner-up gain, [l0, l1, r0, r1]) of the leaf; feature -1: none.

    The gain is measured on the weight the leaf's Gaussians saw, before and after the cut. (The
    leaf's class weights also hold what its parent's split sent it: an entropy from those, minus
    the children's from the Gaussians, is no information gain and goes negative on a rare class.)
    """
    best_f, best_cut, best, second = -1, 0.0, -np.inf, -np.inf
    dists = np.zeros(4)
    for d in range(gauss.shape[4]):
        if masks[t, s, d] == 0:
            continue
        lo, hi = np.inf, -np.inf
        for c in range(2):
            if gauss[t, s, c, GW, d] > 0.0:
                lo, hi = min(lo, gauss[t, s, c, GMIN, d]), max(hi, gauss[t, s, c, GMAX, d])
        feature_best, feature_cut = -np.inf, 0.0
        l0 = l1 = 0.0
        parent = _entropy(gauss[t, s, 0, GW, d], gauss[t, s, 1, GW, d])
        g0, g1 = gauss[t, s, 0], gauss[t, s, 1]
        sd0, sd1 = math.sqrt(_variance(g0, d)), math.sqrt(_variance(g1, d))
        for i in range(1, N_SPLITS + 1):
            cut = lo + (hi - lo) * i / (N_SPLITS + 1.0)
            if not lo < cut < hi:
                continue
            a, b = _weight_below(g0, d, sd0, cut), _weight_below(g1, d, sd1, cut)
            gain = _gain(parent, a, b, gauss[t, s, 0, GW, d] - a, gauss[t, s, 1, GW, d] - b)
            if gain > feature_best:
                feature_best, feature_cut, l0, l1 = gain, cut, a, b
        if feature_best > best:
            second, best, best_f, best_cut = best, feature_best, d, feature_cut
            dists[0], dists[1] = l0, l1
            dists[2], dists[3] = gauss[t, s, 0, GW, d] - l0, gauss[t, s, 1, GW, d] - l1
        elif feature_best > second:
            second = feature_best
    return best_f, best_cut, best, second, dists


@njit(cache=True)
def _mix(a: int, b: int) -> int:
    """A 32-bit hash of two integers (seeds the subspace of a new leaf)."""
    h = (a * 0x9E3779B1 + b * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & 0xFFFFFFFF
    h ^= h >> 12
    h = (h * 0x297A2D39) & 0xFFFFFFFF
    return h ^ (h >> 15)


@njit(cache=True, inline="always")
def _log_odds(c0: float, c1: float) -> float:
    """log(c0 / c1), kept per leaf for naive Bayes (0 until the leaf has seen both classes)."""
    return math.log(c0 / c1) if c0 > 0.0 and c1 > 0.0 else 0.0


@njit(cache=True)
def fill_log_odds(leaves: np.ndarray) -> None:
    for t in range(leaves.shape[0]):
        for s in range(leaves.shape[1]):
            leaves[t, s, LOG_ODDS] = _log_odds(leaves[t, s, C0], leaves[t, s, C1])


@njit(cache=True)
def init_leaf(leaves: np.ndarray, gauss: np.ndarray, masks: np.ndarray, t: int, s: int, c0: float, c1: float, subspace: int, seed: int) -> None:
    """An empty leaf that starts from the class weights its parent's split sent it."""
    leaves[t, s, C0], leaves[t, s, C1], leaves[t, s, LAST] = c0, c1, c0 + c1
    leaves[t, s, MC_OK] = leaves[t, s, NB_OK] = leaves[t, s, LOG_NORM0] = leaves[t, s, LOG_NORM0 + 1] = 0.0
    leaves[t, s, LOG_ODDS] = _log_odds(c0, c1)
    gauss[t, s, :, :3] = 0.0
    gauss[t, s, :, GHALF_PRECISION:] = 0.0
    gauss[t, s, :, GMIN] = np.inf
    gauss[t, s, :, GMAX] = -np.inf
    dim = masks.shape[2]
    if subspace >= dim:
        masks[t, s, :] = 1
        return
    masks[t, s, :] = 0
    h = _mix(seed * 7919 + t, s * 104729 + int(leaves[t, s, LAST]))
    chosen = 0
    while chosen < subspace:  # a seeded draw without replacement
        h = _mix(h, chosen)
        d = h % dim
        if masks[t, s, d] == 0:
            masks[t, s, d] = 1
            chosen += 1


@njit(cache=True, inline="always")
def _naive_bayes_right(leaves: np.ndarray, gauss: np.ndarray, t: int, s: int, z: np.ndarray, y: int) -> bool:
    """Whether naive Bayes (P(class 1) > 0.5) gets ``y`` right at a leaf that has seen events."""
    if leaves[t, s, C1] <= 0.0 or leaves[t, s, C0] <= 0.0:
        return bool((leaves[t, s, C1] > 0.0) == (y == 1))
    lead = naive_bayes_lead(leaves, gauss, t, s, z)
    # P(class 1) > 0.5 is lead < 0; near 0 the probability's own rounding decides, as it always did.
    says_1 = lead < 0.0 if abs(lead) > 1e-9 else 1.0 / (1.0 + math.exp(lead)) > 0.5
    return says_1 == (y == 1)


@njit(cache=True, inline="always")
def _observe(leaves: np.ndarray, gauss: np.ndarray, masks: np.ndarray, t: int, s: int, z: np.ndarray, y: int, w: float) -> None:
    """Fold one event into the leaf: naive-Bayes-adaptive bookkeeping, class weight, Gaussians.

    Naive Bayes reads a class's cached 1 / (2 var) and normaliser only at a leaf that holds both
    classes, so while the leaf holds only class ``y`` they wait (most leaves of a rare class's
    stream hold only the majority): the first event of the other class settles them, from the
    same moments, to the same values."""
    c0, c1 = leaves[t, s, C0], leaves[t, s, C1]
    majority = 1 if c1 > c0 else 0
    if c0 + c1 <= 0.0 or majority == y:
        leaves[t, s, MC_OK] += w
    if c0 + c1 > 0.0 and _naive_bayes_right(leaves, gauss, t, s, z, y):
        leaves[t, s, NB_OK] += w
    other_held = leaves[t, s, C0 + 1 - y] > 0.0
    if other_held and leaves[t, s, C0 + y] <= 0.0:  # the other class's caches waited for this one
        _settle(leaves, gauss, masks, t, s, 1 - y)
    leaves[t, s, C0 + y] += w
    leaves[t, s, LOG_ODDS] = _log_odds(leaves[t, s, C0], leaves[t, s, C1])
    for d in range(z.shape[0]):
        if masks[t, s, d] == 0:
            continue
        weight = gauss[t, s, y, GW, d] + w
        gauss[t, s, y, GW, d] = weight
        delta = z[d] - gauss[t, s, y, GMEAN, d]
        mean = gauss[t, s, y, GMEAN, d] + w * delta / weight
        gauss[t, s, y, GMEAN, d] = mean
        gauss[t, s, y, GM2, d] = gauss[t, s, y, GM2, d] + w * delta * (z[d] - mean)
        gauss[t, s, y, GMIN, d] = min(gauss[t, s, y, GMIN, d], z[d])
        gauss[t, s, y, GMAX, d] = max(gauss[t, s, y, GMAX, d], z[d])
    if other_held:
        _settle(leaves, gauss, masks, t, s, y)


@njit(cache=True, inline="always")
def _settle(leaves: np.ndarray, gauss: np.ndarray, masks: np.ndarray, t: int, s: int, c: int) -> None:
    """Class ``c``'s naive-Bayes caches from its moments: each feature's 1 / (2 var), and the sum
    of log(sqrt(2 pi var)), a logarithm of the product of the variances kept as a mantissa and a
    power of two (one logarithm, not one per feature; no overflow)."""
    mantissa, power, counted = 1.0, 0, 0
    for d in range(masks.shape[2]):
        if masks[t, s, d] == 0:
            continue
        weight = gauss[t, s, c, GW, d]
        var = gauss[t, s, c, GM2, d] / (weight - 1.0) if weight > 1.0 else 0.0  # _variance
        if var > 0.0:
            gauss[t, s, c, GHALF_PRECISION, d] = 0.5 / var
            m, e = _frexp(var)
            mantissa, power, counted = mantissa * m, power + e, counted + 1
            if mantissa < 1e-200:
                m, e = math.frexp(mantissa)
                mantissa, power = m, power + e
        else:
            gauss[t, s, c, GHALF_PRECISION, d] = 0.0
    log_product = math.log(mantissa) + power * _LN2
    leaves[t, s, LOG_NORM0 + c] = counted * _HALF_LOG_TAU + 0.5 * log_product if counted else 0.0


@njit(cache=True)
def _try_split(
    nodes: np.ndarray, thresholds: np.ndarray, leaves: np.ndarray, gauss: np.ndarray, masks: np.ndarray,
    sizes: np.ndarray, t: int, node: int, params: np.ndarray, subspace: int, seed: int,
) -> None:  # fmt: skip
    s = nodes[t, node, SLOT]
    c0, c1 = leaves[t, s, C0], leaves[t, s, C1]
    leaves[t, s, LAST] = c0 + c1
    if c0 <= 0.0 or c1 <= 0.0 or sizes[t, 1] >= leaves.shape[1]:
        return  # a pure leaf has nothing to gain; a full tree stops growing
    feature, cut, best, second, dists = best_split(leaves, gauss, masks, t, s)
    if feature < 0 or not best > 0.0:
        return
    delta, tau = params[1], params[2]
    bound = math.sqrt(math.log(1.0 / delta) / (2.0 * (c0 + c1)))  # merit range log2(2 classes) = 1
    if not (best - second > bound or bound < tau):
        return
    left, right_slot = sizes[t, 0], sizes[t, 1]
    nodes[t, node, F], nodes[t, node, LEFT], nodes[t, node, SLOT] = feature, left, -1
    thresholds[t, node] = cut
    for child, slot in ((left, s), (left + 1, right_slot)):
        nodes[t, child, F], nodes[t, child, LEFT], nodes[t, child, SLOT] = -1, -1, slot
    init_leaf(leaves, gauss, masks, t, s, dists[0], dists[1], subspace, seed)
    init_leaf(leaves, gauss, masks, t, right_slot, dists[2], dists[3], subspace, seed)
    sizes[t, 0] += 2
    sizes[t, 1] += 1


@njit(cache=True)
def forest_learn_many(
    nodes: np.ndarray, thresholds: np.ndarray, leaves: np.ndarray, gauss: np.ndarray, masks: np.ndarray,
    sizes: np.ndarray, zs: np.ndarray, ys: np.ndarray, weights: np.ndarray, params: np.ndarray, subspace: int,
    seed: int, full: int, done: np.ndarray,
) -> int:  # fmt: skip
    """Tree ``t`` learns rows ``done[t]``, ``done[t] + 1``, ... in order, row ``i`` with weight
    ``weights[i, t]`` (0: skips it), until it reaches ``full`` leaves; params: grace, delta, tau.

    Tree by tree (the trees are independent): one tree's arrays stay in the cache for the whole
    run. ``done[t]`` becomes the rows tree ``t`` learned; returns the fewest, so the caller can grow
    the arrays and call again while some tree has rows left.
    """
    n = zs.shape[0]
    for t in range(nodes.shape[0]):
        i = done[t]
        while i < n and sizes[t, 1] < full:
            w = weights[i, t]
            if w > 0.0:
                z = zs[i]
                node = find_leaf(nodes, thresholds, t, z)
                s = nodes[t, node, SLOT]
                _observe(leaves, gauss, masks, t, s, z, ys[i], w)
                if leaves[t, s, C0] + leaves[t, s, C1] - leaves[t, s, LAST] >= params[0]:
                    _try_split(nodes, thresholds, leaves, gauss, masks, sizes, t, node, params, subspace, seed)
            i += 1
        done[t] = i
    return int(done.min())


class HoeffdingForest:
    """``n_trees`` Hoeffding trees; with ``bagging`` each learns an event Poisson(1) times.

    ``proba(z)`` / ``learn(z, y, w)`` take a feature vector (the model set gives the raw values);
    river's ``predict_proba_one`` / ``learn_one`` are there too (feature order = the dict's), so
    river's own tools can run it.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> forest = HoeffdingForest(n_trees=3, grace_period=50, seed=1)
    >>> for _ in range(2000):
    ...     z = rng.normal(size=2)
    ...     forest.learn(z, int(z[0] > 0.5), 1.0)
    >>> forest.proba(np.array([2.0, 0.0])) > 0.9 > 0.1 > forest.proba(np.array([-2.0, 0.0]))
    True
    """

    FIRST_CAPACITY = 16  # leaves per tree before the arrays first grow
    rate = 1.0  # of a forest saved before the rate was a setting (checkpoint format 4)
    # 1: saved with gauss[..., feature, field] and no log-odds per leaf (before format 6); 2: now.
    layout = 1
    _pcg: np.ndarray | None = None  # the Poisson draws' working copy of rng's state, once drawn
    # The tree arrays (see the module's layout), allocated on the first event.
    thresholds: np.ndarray
    leaves: np.ndarray
    gauss: np.ndarray
    masks: np.ndarray
    sizes: np.ndarray

    def __init__(
        self, n_trees: int, grace_period: int, *, delta: float = 1e-7, tau: float = 0.05,
        max_leaves: int = 1024, subspace: int = 0, bagging: bool = True, rate: float = 1.0, seed: int = 0,
    ) -> None:  # fmt: skip
        self.n_trees = n_trees
        self.params = np.array([float(grace_period), delta, tau])
        self.max_leaves = max_leaves
        self.subspace = subspace  # features a leaf considers; 0: all
        self.bagging = bagging
        self.rate = rate
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.dim = 0  # set by the first event
        self.leaf_features = 0  # features a new leaf gets (subspace, or all), set with dim
        self.capacity = 0
        self.nodes = np.zeros((0, 0, 3), dtype=np.int64)
        self.layout = 2

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        pcg = state.pop("_pcg", None)
        if pcg is not None:  # the draws' working copy goes back into the generator
            store_pcg64_state(self.rng, pcg)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.layout == 1 and self.dim:
            if self.leaves.shape[2] == 5:  # saved when the normalisers were per Gaussian (format 4)
                self.leaves = np.concatenate([self.leaves, self.gauss[..., 6].sum(axis=3)], axis=2)
            self.gauss = np.ascontiguousarray(self.gauss[..., :G_FIELDS].swapaxes(3, 4))
            self.leaves = np.concatenate([self.leaves, np.zeros(self.leaves.shape[:2] + (1,))], axis=2)
            fill_log_odds(self.leaves)
        self.layout = 2

    def proba(self, z: np.ndarray) -> float:
        if not self.dim:
            return 0.0
        return forest_p1(self.nodes, self.thresholds, self.leaves, self.gauss, z)

    def proba_many(self, zs: np.ndarray) -> np.ndarray:
        out = np.zeros(zs.shape[0])
        if self.dim:
            forest_p1_many(self.nodes, self.thresholds, self.leaves, self.gauss, zs, out)
        return out

    def learn(self, z: np.ndarray, y: int, w: float) -> None:
        self.learn_many(z[None, :], np.array([y], dtype=np.int64), np.array([w]))

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        """Learn the rows in order; tree ``t`` takes row ``i`` with weight ``ws[i]`` x Poisson(rate)."""
        if not self.dim:
            self._allocate(zs.shape[1])
        n = zs.shape[0]
        weights = self._bagging_weights(ws)
        done = np.zeros(self.n_trees, dtype=np.int64)  # rows each tree has learned
        while True:
            full = self.capacity if self.capacity < self.max_leaves else self.max_leaves + 1
            least = forest_learn_many(
                self.nodes, self.thresholds, self.leaves, self.gauss, self.masks, self.sizes, zs, ys, weights,
                self.params, self.leaf_features, self.seed, full, done,
            )  # fmt: skip
            if least == n:  # a tree that just filled its arrays grows them when it next needs room
                return
            self._grow(min(2 * self.capacity, self.max_leaves))  # some tree stopped at the capacity

    def _bagging_weights(self, ws: np.ndarray) -> np.ndarray:
        """Each row's weight in each tree: ``ws[i]`` x Poisson(rate) (bagging) or ``ws[i]``.

        The draws are those of ``rng.poisson(rate, (rows, trees))``: one call for the batch consumes
        the generator as a call per row would. A compiled kernel draws them from a working copy of
        the generator's state (``stream.draws``), written back when the forest is saved.
        """
        if not self.bagging:
            return np.repeat(ws[:, None], self.n_trees, axis=1)
        if self._pcg is None and self.rate < 10.0:
            self._pcg = pcg64_state(self.rng)
        if self._pcg is None or self.rate >= 10.0:  # not numpy's PCG64, or not numpy's method for small rates
            return ws[:, None] * self.rng.poisson(self.rate, (ws.shape[0], self.n_trees))
        weights = np.empty((ws.shape[0], self.n_trees))
        poisson_weights(self._pcg, self.rate, ws, weights)
        return weights

    def predict_proba_one(self, x: dict[str, float]) -> dict[int, float]:
        p = self.proba(np.fromiter(x.values(), dtype=np.float64, count=len(x)))
        return {0: 1.0 - p, 1: p}

    def learn_one(self, x: dict[str, float], y: int, w: float = 1.0) -> None:
        self.learn(np.fromiter(x.values(), dtype=np.float64, count=len(x)), int(y), w)

    @property
    def n_leaves(self) -> int:
        return int(self.sizes[:, 1].sum()) if self.dim else 0

    def _allocate(self, dim: int) -> None:
        t, self.dim, self.capacity = self.n_trees, dim, min(self.FIRST_CAPACITY, self.max_leaves)
        self.nodes = np.full((t, 2 * self.capacity, 3), -1, dtype=np.int64)
        self.thresholds = np.zeros((t, 2 * self.capacity))
        self.leaves = np.zeros((t, self.capacity, L_FIELDS))
        self.gauss = np.zeros((t, self.capacity, 2, G_FIELDS, dim))
        self.masks = np.zeros((t, self.capacity, dim), dtype=np.uint8)
        self.sizes = np.ones((t, 2), dtype=np.int64)  # the root: one node, one leaf
        self.nodes[:, 0, SLOT] = 0
        self.leaf_features = self.subspace if 0 < self.subspace < dim else dim
        for tree in range(t):
            init_leaf(self.leaves, self.gauss, self.masks, tree, 0, 0.0, 0.0, self.leaf_features, self.seed)

    def _grow(self, capacity: int) -> None:
        """Room for ``capacity`` leaves per tree (arrays grow by doubling, never past max_leaves)."""
        extra = capacity - self.capacity
        self.nodes = np.concatenate([self.nodes, np.full((self.n_trees, 2 * extra, 3), -1, dtype=np.int64)], axis=1)
        self.thresholds = np.pad(self.thresholds, ((0, 0), (0, 2 * extra)))
        self.leaves = np.pad(self.leaves, ((0, 0), (0, extra), (0, 0)))
        self.gauss = np.pad(self.gauss, ((0, 0), (0, extra), (0, 0), (0, 0), (0, 0)))
        self.masks = np.pad(self.masks, ((0, 0), (0, extra), (0, 0)))
        self.capacity = capacity
