"""VQ sampling: thin the majority class so the kept events cover its whole space.

A streaming reading of PVQ (arXiv 2210.01792). K codewords follow the standardised majority events
(online k-means, per-codeword rate ``max(1/n, lr_floor)`` so they keep tracking drift). A majority
event is kept when its codeword's token bucket holds a token. Buckets refill evenly, so the
majority keep budget ``ratio * minority_rate / majority_rate`` is spread over the *regions* of the
majority class, not over its events: a sparse region (often near the boundary) is kept nearly
always, the dense bulk rarely. Tokens a full bucket cannot hold go to a shared spill pool that any
codeword may draw from, so the long-run keep rate still meets the budget. Minority events are
always kept.

The hot path is three numba kernels over plain arrays: :func:`nearest`, :func:`nearest_batch`
(``prange`` over a micro-batch) and :func:`vq_step` (assign, update or re-seed, refill, decide).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from stream.config import SamplerSettings
from stream.weighting import DecayedPriors

# Indices into the float state vector of vq_step (kept in one array so the kernel owns it).
N_ACTIVE, SPILL, AVG_D2 = 0, 1, 2
# Decay of codeword usage (for "least used") and of the average quantisation distance.
USAGE_DECAY = 0.999
D2_DECAY = 0.999


@njit(cache=True, inline="always")
def nearest(codebook: np.ndarray, n_active: int, x: np.ndarray) -> tuple[int, float]:
    """Index of the codeword nearest to ``x`` among the first ``n_active``, and its squared distance."""
    best, best_d2 = -1, np.inf
    for j in range(n_active):
        d2 = 0.0
        for i in range(x.shape[0]):
            diff = x[i] - codebook[j, i]
            d2 += diff * diff
        if d2 < best_d2:
            best, best_d2 = j, d2
    return best, best_d2


@njit(cache=True, parallel=True)
def nearest_batch(
    codebook: np.ndarray, n_active: int, xs: np.ndarray, idx: np.ndarray, d2: np.ndarray
) -> None:
    """:func:`nearest` for every row of ``xs`` in parallel, against a fixed codebook."""
    for r in prange(xs.shape[0]):
        idx[r], d2[r] = nearest(codebook, n_active, xs[r])


@njit(cache=True, inline="always")
def vq_step(
    codebook: np.ndarray,
    counts: np.ndarray,
    usage: np.ndarray,
    kept: np.ndarray,
    buckets: np.ndarray,
    state: np.ndarray,
    x: np.ndarray,
    keep_rate: float,
    lr_floor: float,
    reseed_ratio: float,
    capacity: float,
) -> tuple[bool, int]:
    """Fold one majority event into the codebook and decide whether to keep it for training."""
    k = codebook.shape[0]
    n_active = int(state[N_ACTIVE])
    if n_active < k:  # filling: the first K events become codewords
        j = n_active
        codebook[j] = x
        counts[j] = 1.0
        buckets[j] = 1.0
        state[N_ACTIVE] = n_active + 1
    else:
        j, d2 = nearest(codebook, n_active, x)
        avg = state[AVG_D2]
        if avg > 0.0 and d2 > reseed_ratio * reseed_ratio * avg:
            j = int(np.argmin(usage))  # far from everything: take over the least-used codeword
            codebook[j] = x
            counts[j] = 1.0
        else:
            counts[j] += 1.0
            lr = max(1.0 / counts[j], lr_floor)
            for i in range(x.shape[0]):
                codebook[j, i] += lr * (x[i] - codebook[j, i])
            state[AVG_D2] = d2 if avg == 0.0 else D2_DECAY * avg + (1.0 - D2_DECAY) * d2
    n = int(state[N_ACTIVE])
    refill = keep_rate / n
    for i in range(n):
        usage[i] *= USAGE_DECAY
        kept[i] *= USAGE_DECAY
        buckets[i] += refill
        if buckets[i] > capacity:
            state[SPILL] = min(state[SPILL] + buckets[i] - capacity, capacity * n)
            buckets[i] = capacity
    usage[j] += 1.0
    if buckets[j] >= 1.0:
        buckets[j] -= 1.0
    elif state[SPILL] >= 1.0:
        state[SPILL] -= 1.0
    else:
        return False, j
    kept[j] += 1.0
    return True, j


@njit(cache=True)
def vq_weights(
    codebook: np.ndarray, counts: np.ndarray, usage: np.ndarray, kept: np.ndarray, buckets: np.ndarray,
    state: np.ndarray, mass: np.ndarray, tallies: np.ndarray, zs: np.ndarray, ys: np.ndarray, params: np.ndarray,
    out: np.ndarray,
) -> None:  # fmt: skip
    """``VQSampler.weight`` of every row in order (mode vq): the decayed priors in ``mass``, the
    seen / offered / kept tallies in ``tallies``; params: decay, warmup, ratio, min keep rate,
    lr floor, reseed distance, bucket capacity, density correction, max correction."""
    decay, warmup, ratio, floor = params[0], params[1], params[2], params[3]
    for r in range(zs.shape[0]):
        y = ys[r]
        mass[0] *= decay
        mass[1] *= decay
        mass[y] += 1.0 - decay
        tallies[0] += 1.0
        tallies[1 + y] += 1.0
        minority = 0 if mass[0] < mass[1] else 1
        if y == minority:
            out[r] = 1.0
        else:
            rate = 1.0
            if tallies[0] > warmup:
                total = mass[0] + mass[1]
                p_min = mass[minority] / total if total > 0 else 0.5
                p_maj = mass[1 - minority] / total if total > 0 else 0.5
                rate = max(floor, min(1.0, ratio * p_min / max(p_maj, 1e-12)))
            keep, j = vq_step(codebook, counts, usage, kept, buckets, state, zs[r], rate, params[4], params[5], params[6])
            if not keep:
                out[r] = 0.0
            elif params[7] > 0.0:
                out[r] = min(params[8], usage[j] / kept[j])
            else:
                out[r] = 1.0
        tallies[3 + y] += out[r] > 0.0


class VQSampler:
    """Decides which labelled events train the model: weight 1.0 (keep) or 0.0 (skip)."""

    def __init__(self, settings: SamplerSettings, dim: int, seed: int = 0) -> None:
        self.settings = settings
        self.codebook = np.zeros((settings.codewords, dim))
        self.counts = np.zeros(settings.codewords)
        self.usage = np.zeros(settings.codewords)
        self.kept_usage = np.zeros(settings.codewords)
        self.buckets = np.zeros(settings.codewords)
        self.state = np.zeros(3)
        self.priors = DecayedPriors(settings.prior_decay)
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.kept = [0, 0]
        self.offered = [0, 0]

    @property
    def n_active(self) -> int:
        return int(self.state[N_ACTIVE])

    def keep_rate(self) -> float:
        """Share of majority events to keep so that kept majority:minority ~ ``ratio``."""
        minority = self.priors.minority_class()
        p_min, p_maj = self.priors.prior(minority), self.priors.prior(1 - minority)
        return max(self.settings.min_keep_rate, min(1.0, self.settings.ratio * p_min / max(p_maj, 1e-12)))

    def weight(self, z: np.ndarray, y: int) -> float:
        """0.0 to skip this event; else its learning weight (1.0, or with ``density_correction``
        the inverse keep rate of its region, so the kept majority keeps the majority's density)."""
        return float(self.weight_many(z[None, :], np.array([y], dtype=np.int64))[0])

    def weight_many(self, zs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """``weight`` of every row, in order: one kernel call in the vq mode (the decision lives
        only there), event by event for random undersampling and when sampling is off."""
        s = self.settings
        if not s.enabled or s.mode != "vq":
            return np.array([self._weigh_plainly(y) for y in ys.tolist()])
        mass = np.array(self.priors.mass)
        tallies = np.array([self.seen, *self.offered, *self.kept], dtype=np.float64)
        params = np.array([
            self.priors.decay, s.warmup, s.ratio, s.min_keep_rate, s.lr_floor, s.reseed_distance, s.bucket_capacity,
            float(s.density_correction), s.max_correction,
        ])  # fmt: skip
        out = np.zeros(zs.shape[0])
        vq_weights(
            self.codebook, self.counts, self.usage, self.kept_usage, self.buckets, self.state, mass, tallies,
            np.ascontiguousarray(zs), ys, params, out,
        )  # fmt: skip
        self.priors.mass = mass.tolist()
        self.seen, self.offered, self.kept = int(tallies[0]), [int(tallies[1]), int(tallies[2])], [int(tallies[3]), int(tallies[4])]
        return out

    def _weigh_plainly(self, y: int) -> float:
        """Random undersampling at the keep rate, or (sampling off) every event."""
        s = self.settings
        self.priors.update(y)
        self.seen += 1
        self.offered[y] += 1
        w = 1.0
        if s.enabled and y != self.priors.minority_class():
            rate = self.keep_rate() if self.seen > s.warmup else 1.0
            keep = self.rng.random() < rate
            w = (1.0 / rate if s.density_correction else 1.0) if keep else 0.0
        self.kept[y] += w > 0.0
        return w

    def distance(self, z: np.ndarray) -> float:
        """Distance from ``z`` to the majority codebook (an anomaly score), 0 while empty."""
        if self.n_active == 0:
            return 0.0
        _, d2 = nearest(self.codebook, self.n_active, z)
        return float(np.sqrt(d2))

    def assign(self, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest codeword and squared distance for each row of a micro-batch (parallel)."""
        idx = np.full(zs.shape[0], -1, dtype=np.int64)
        d2 = np.full(zs.shape[0], np.inf)
        if self.n_active:
            nearest_batch(self.codebook, self.n_active, np.ascontiguousarray(zs), idx, d2)
        return idx, d2

    def on_drift(self) -> None:
        """A confirmed drift: cap the counts so every codeword moves fast again."""
        np.minimum(self.counts, float(self.settings.drift_lr_boost), out=self.counts)

    def stats(self) -> dict[str, Any]:
        return {
            "codewords_active": self.n_active,
            "keep_rate_target": self.keep_rate(),
            "kept": list(self.kept),
            "offered": list(self.offered),
        }
