from __future__ import annotations

import numpy as np
import pytest

from stream.events import BadRecord, Event
from stream.features import FeatureSpace


def test_order_is_frozen_from_the_first_event_and_extras_are_counted() -> None:
    space = FeatureSpace(None)
    space.vector(Event("1", 0, {"b": 1.0, "a": 2.0}, 0))
    space.vector(Event("2", 0, {"a": 1.0, "b": 3.0, "zzz": 9.0}, 0))
    assert space.names == ["b", "a"]
    assert space.extra_total == 1


def test_missing_features_are_imputed_with_the_running_mean() -> None:
    space = FeatureSpace(["a", "b"])
    for v in (1.0, 3.0):
        space.vector(Event("x", 0, {"a": v, "b": v}, 0))
    row = space.vector(Event("y", 0, {"a": 2.0}, 0))  # b imputed with mean 2.0
    assert space.imputed_total == 1
    assert row[1] == pytest.approx(0.0)  # standardised
    assert row[3] == pytest.approx(2.0)  # raw


def test_welford_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(5.0, 3.0, size=(500, 3))
    space = FeatureSpace(["a", "b", "c"])
    for row in data:
        out = space.vector(Event("e", 0, dict(zip("abc", row)), 0))
    np.testing.assert_allclose(space.mean, data.mean(axis=0))
    np.testing.assert_allclose(out[:3], (data[-1] - data.mean(axis=0)) / data.std(axis=0, ddof=1))
    np.testing.assert_array_equal(out[3:], data[-1])  # the raw values, unscaled


def test_a_known_feature_that_is_not_a_number_is_a_bad_record() -> None:
    space = FeatureSpace(["a"])
    with pytest.raises(BadRecord, match="bad_feature"):
        space.vector(Event("e", 0, {}, 0, ("a",)))
