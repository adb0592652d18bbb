"""Adaptive class reweighting from time-decayed class priors (as in OOB/UOB).

The weight of class ``c`` is ``(prior_majority / prior_c) ** beta``, capped. It is computed on the
events that survive sampling, so it corrects the imbalance that is *left* after VQ sampling rather
than the raw one (which the sampler already reduced).
"""

from __future__ import annotations

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


class ClassWeights:
    """Per-class learning weight; ``weight(y)`` after ``observe(y)`` for every kept event."""

    def __init__(self, settings: WeightingSettings) -> None:
        self.settings = settings
        self.priors = DecayedPriors(settings.decay)
        self.seen = 0

    def observe(self, y: int, weight: float = 1.0) -> None:
        self.priors.update(y, weight)
        self.seen += 1

    def weight(self, y: int) -> float:
        s = self.settings
        if not s.enabled or self.seen < s.warmup:
            return 1.0
        p_c = self.priors.prior(y)
        p_maj = max(self.priors.prior(0), self.priors.prior(1))
        if p_c <= 0.0:
            return s.max_weight
        return float(min(s.max_weight, (p_maj / p_c) ** s.beta))
