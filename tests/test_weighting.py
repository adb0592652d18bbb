from __future__ import annotations

import pytest

from stream.config import WeightingSettings
from stream.weighting import ClassWeights


def feed(weights: ClassWeights, negatives_per_positive: int, rounds: int) -> None:
    for _ in range(rounds):
        for _ in range(negatives_per_positive):
            weights.observe(0)
        weights.observe(1)


def test_minority_weight_follows_the_decayed_prior_ratio() -> None:
    weights = ClassWeights(WeightingSettings(beta=1.0, decay=0.999, max_weight=100))
    feed(weights, 9, 2000)
    assert weights.weight(1) == pytest.approx(9.0, rel=0.1)
    assert weights.weight(0) == 1.0


def test_beta_cap_and_warmup() -> None:
    weights = ClassWeights(WeightingSettings(beta=0.5, decay=0.999, max_weight=2.0, warmup=50))
    for _ in range(40):
        weights.observe(0)
    assert weights.weight(1) == 1.0  # deferred until warm-up
    feed(weights, 99, 100)
    assert weights.weight(1) == 2.0  # sqrt(99) capped at 2


def test_priors_adapt_to_a_class_prior_shift() -> None:
    weights = ClassWeights(WeightingSettings(beta=1.0, decay=0.99, max_weight=1000))
    feed(weights, 99, 50)
    before = weights.weight(1)
    feed(weights, 4, 200)
    assert weights.weight(1) < before / 5
