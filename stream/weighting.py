"""Adaptive class reweighting from time-decayed class priors (as in OOB/UOB).

The weight of class ``c`` is ``(prior_majority / prior_c) ** beta``, capped. It is computed on the
events that survive sampling, so it corrects the imbalance that is *left* after VQ sampling rather
than the raw one (which the sampler already reduced).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stream.config import WeightingSettings


class DecayedPriors:
    """Exponentially decayed share of each class among the events seen.

    >>> p = DecayedPriors(0.9)
    >>> for y in (0, 0, 0, 1):
    ...     p.update(y)
    >>> round(p.prior(1), 3), p.minority_class()
    (0.291, 1)
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.mass = [0.0, 0.0]

    def update(self, y: int, weight: float = 1.0) -> None:
        """Count one event of class ``y`` standing for ``weight`` events."""
        self.mass[0] *= self.decay
        self.mass[1] *= self.decay
        self.mass[y] += (1.0 - self.decay) * weight

    def prior(self, c: int) -> float:
        total = self.mass[0] + self.mass[1]
        return self.mass[c] / total if total > 0 else 0.5

    def minority_class(self) -> int:
        """The rarer class lately (1 until the stream says otherwise)."""
        return 0 if self.mass[0] < self.mass[1] else 1


@njit(cache=True)
def class_weight(mass: np.ndarray, y: int, seen: int, params: np.ndarray) -> float:
    """The weight of class ``y`` from the decayed class masses; params: enabled, warmup, beta, cap."""
    if params[0] == 0.0 or seen < params[1]:
        return 1.0
    total = mass[0] + mass[1]
    p_c = mass[y] / total if total > 0 else 0.5
    p_majority = max(mass[0], mass[1]) / total if total > 0 else 0.5
    if p_c <= 0.0:
        return float(params[3])
    return float(min(params[3], (p_majority / p_c) ** params[2]))


@njit(cache=True)
def class_weights(mass: np.ndarray, decay: float, ys: np.ndarray, ws: np.ndarray, params: np.ndarray, seen: int, out: np.ndarray) -> int:
    """``observe(y, w)`` then ``weight(y)`` for every kept event in order. Returns the new count seen."""
    for r in range(ys.shape[0]):
        y = ys[r]
        mass[0] *= decay
        mass[1] *= decay
        mass[y] += (1.0 - decay) * ws[r]
        seen += 1
        out[r] = class_weight(mass, y, seen, params)
    return seen


class ClassWeights:
    """Per-class learning weight; ``weight(y)`` after ``observe(y)`` for every kept event."""

    def __init__(self, settings: WeightingSettings) -> None:
        self.settings = settings
        self.priors = DecayedPriors(settings.decay)
        self.seen = 0

    def observe(self, y: int, weight: float = 1.0) -> None:
        self.weigh_many(np.array([y], dtype=np.int64), np.array([weight]))

    def weigh_many(self, ys: np.ndarray, ws: np.ndarray) -> np.ndarray:
        """``observe(y, w)`` then ``weight(y)`` for each kept event, in order, in one kernel call."""
        mass = np.array(self.priors.mass)
        out = np.zeros(ys.shape[0])
        self.seen = class_weights(mass, self.priors.decay, ys, ws, self._params(), self.seen, out)
        self.priors.mass = mass.tolist()
        return out

    def weight(self, y: int) -> float:
        return float(class_weight(np.array(self.priors.mass), y, self.seen, self._params()))

    def _params(self) -> np.ndarray:
        s = self.settings
        return np.array([float(s.enabled), s.warmup, s.beta, s.max_weight])
