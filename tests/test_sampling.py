"""VQ sampler: kernels against an independent numpy reference, keep-rate budget, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from stream.config import SamplerSettings
from stream.sampling import AVG_D2, D2_DECAY, N_ACTIVE, SPILL, USAGE_DECAY, VQSampler, nearest, nearest_batch, vq_step


def reference_step(cb, counts, usage, kept, buckets, state, x, keep_rate, lr_floor, reseed, cap):  # type: ignore[no-untyped-def]
    """The sampler step written independently with numpy (no loops over coordinates)."""
    k = cb.shape[0]
    n = int(state[N_ACTIVE])
    if n < k:
        j = n
        cb[j], counts[j], buckets[j] = x, 1.0, 1.0
        state[N_ACTIVE] = n + 1
    else:
        d2 = ((cb[:n] - x) ** 2).sum(axis=1)
        j = int(np.argmin(d2))
        avg = state[AVG_D2]
        if avg > 0 and d2[j] > reseed**2 * avg:
            j = int(np.argmin(usage))
            cb[j], counts[j] = x, 1.0
        else:
            counts[j] += 1
            cb[j] += max(1 / counts[j], lr_floor) * (x - cb[j])
            state[AVG_D2] = d2[j] if avg == 0 else D2_DECAY * avg + (1 - D2_DECAY) * d2[j]
    n = int(state[N_ACTIVE])
    usage[:n] *= USAGE_DECAY
    kept[:n] *= USAGE_DECAY
    buckets[:n] += keep_rate / n
    over = np.maximum(buckets[:n] - cap, 0.0)
    for extra in over[over > 0]:
        state[SPILL] = min(state[SPILL] + extra, cap * n)
    buckets[:n] = np.minimum(buckets[:n], cap)
    usage[j] += 1
    if buckets[j] >= 1:
        buckets[j] -= 1
    elif state[SPILL] >= 1:
        state[SPILL] -= 1
    else:
        return False, j
    kept[j] += 1
    return True, j


def fresh(k: int, d: int) -> list[np.ndarray]:
    return [np.zeros((k, d)), np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(3)]


def test_jit_step_matches_numpy_reference_and_python_source() -> None:
    rng = np.random.default_rng(0)
    xs = np.vstack([rng.normal(0, 1, (3000, 4)), rng.normal(8, 0.3, (20, 4))])
    rng.shuffle(xs)
    jit, ref, py = fresh(16, 4), fresh(16, 4), fresh(16, 4)
    for x in xs:
        a = vq_step(*jit, x, 0.2, 0.02, 3.0, 4.0)
        b = reference_step(*ref, x, 0.2, 0.02, 3.0, 4.0)
        c = vq_step.py_func(*py, x, 0.2, 0.02, 3.0, 4.0)
        assert a == b == c
    for got, want in zip(jit, ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_batch_kernel_equals_one_by_one() -> None:
    rng = np.random.default_rng(1)
    cb = rng.normal(size=(32, 6))
    xs = rng.normal(size=(500, 6))
    idx, d2 = np.empty(500, dtype=np.int64), np.empty(500)
    nearest_batch(cb, 32, xs, idx, d2)
    for r in range(500):
        assert (idx[r], d2[r]) == nearest(cb, 32, xs[r])
        assert idx[r] == np.argmin(((cb - xs[r]) ** 2).sum(axis=1))


@pytest.mark.parametrize("ratio", [1.0, 5.0])
def test_long_run_keep_rate_meets_the_budget(ratio: float) -> None:
    sampler = VQSampler(SamplerSettings(ratio=ratio, warmup=0, prior_decay=0.999, min_keep_rate=0.0), dim=5)
    rng = np.random.default_rng(2)
    for _ in range(40_000):
        y = int(rng.random() < 0.02)
        sampler.weight(rng.normal(size=5) + 3 * y, y)
    kept_ratio = sampler.kept[0] / sampler.kept[1]
    assert sampler.kept[1] == sampler.offered[1]  # minority always kept
    assert kept_ratio == pytest.approx(ratio, rel=0.15)


def test_the_keep_rate_floor_holds_at_extreme_imbalance() -> None:
    """At 1:1000 a ratio of 30 would keep 3% of the majority; a floor of 0.3 keeps 30%."""
    sampler = VQSampler(SamplerSettings(ratio=30.0, warmup=0, min_keep_rate=0.3), dim=5)
    rng = np.random.default_rng(4)
    for _ in range(40_000):
        y = int(rng.random() < 0.001)
        sampler.weight(rng.normal(size=5) + 3 * y, y)
    assert sampler.kept[0] / sampler.offered[0] == pytest.approx(0.3, rel=0.1)


def test_vq_keeps_a_rare_majority_subcluster_far_more_than_random() -> None:
    """Same overall keep rate; the rare region (0.2% of the majority) is what VQ protects."""
    rng = np.random.default_rng(3)
    n = 100_000
    rare = rng.random(n) < 0.002
    xs = rng.normal(size=(n, 6))
    xs[rare] = rng.normal(6.0, 0.3, size=(int(rare.sum()), 6))
    ys = (rng.random(n) < 0.01).astype(int)
    xs[ys == 1] = rng.normal(-4.0, 0.5, size=(int(ys.sum()), 6))
    rates = {}
    for mode in ("vq", "random"):
        sampler = VQSampler(SamplerSettings(mode=mode, ratio=3.0, warmup=0, min_keep_rate=0.0), dim=6, seed=4)
        kept = np.array([sampler.weight(x, int(y)) for x, y in zip(xs, ys)]) > 0.0
        majority = ys == 0
        rates[mode] = (kept[majority & rare].mean(), kept[majority].mean())
    (vq_rare, vq_all), (rnd_rare, rnd_all) = rates["vq"], rates["random"]
    assert vq_all == pytest.approx(rnd_all, rel=0.2)  # same budget
    assert vq_rare > 4 * rnd_rare  # the rare region is covered


@pytest.mark.parametrize("correct", [True, False])
def test_density_correction_gives_each_region_its_own_weight_back(correct: bool) -> None:
    """VQ keeps a sparse region more often than the dense bulk; weighting each kept event by its
    region's inverse keep rate gives both regions their share of the majority again (stratified
    sampling with inverse-probability weights): what the trees learn keeps the majority's density."""
    rng = np.random.default_rng(5)
    n = 60_000
    sparse = rng.random(n) < 0.05
    xs = rng.normal(size=(n, 4))
    xs[sparse] = rng.normal(5.0, 0.5, size=(int(sparse.sum()), 4))
    sampler = VQSampler(SamplerSettings(codewords=16, ratio=1.0, warmup=0, min_keep_rate=0.3, density_correction=correct), dim=4)
    ws = sampler.weight_many(xs, np.zeros(n, dtype=np.int64))
    later = np.arange(n) > n // 4  # once the codebook has settled
    kept = ws > 0
    assert kept[later & sparse].mean() > 1.5 * kept[later & ~sparse].mean()  # VQ's thinning is uneven
    share = ws[later & sparse].sum() / ws[later].sum()  # the sparse region's share of the learned weight
    truth = sparse[later].mean()
    if correct:
        assert share == pytest.approx(truth, rel=0.15)
    else:
        assert share > 1.4 * truth


def test_drift_caps_counts_so_codewords_move_fast_again() -> None:
    sampler = VQSampler(SamplerSettings(codewords=4, warmup=0, drift_lr_boost=10), dim=2)
    for i in range(1000):
        sampler.weight(np.array([i % 3, 0.0]), 0)
    assert sampler.counts.max() > 10
    sampler.on_drift()
    assert sampler.counts.max() == 10


def test_sampler_off_keeps_everything() -> None:
    sampler = VQSampler(SamplerSettings(enabled=False), dim=2)
    assert all(sampler.weight(np.zeros(2), 0) == 1.0 for _ in range(100))
