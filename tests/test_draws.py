"""The compiled Poisson draws against numpy's: the same numbers, the same generator state after."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import stream.trees
from stream.draws import pcg64_state, poisson_weights, store_pcg64_state
from stream.trees import HoeffdingForest


@pytest.mark.parametrize("lam", [1.0, 0.05, 0.5, 3.0, 6.0, 9.99])
def test_draws_and_state_are_numpys(lam: float) -> None:
    for seed in range(4):
        ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
        state = pcg64_state(ours)
        assert state is not None
        for rows in (1, 7, 64, 0, 300):
            ws = np.random.default_rng(rows).random(rows) * 3.0
            out = np.empty((rows, 20))
            poisson_weights(state, lam, ws, out)
            assert np.array_equal(out, ws[:, None] * theirs.poisson(lam, (rows, 20)))
        store_pcg64_state(ours, state)
        assert ours.bit_generator.state == theirs.bit_generator.state
        assert ours.random() == theirs.random()


def test_other_generators_have_no_working_copy() -> None:
    assert pcg64_state(np.random.Generator(np.random.MT19937(0))) is None


def numpy_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream.trees, "pcg64_state", lambda rng: None)


@pytest.mark.parametrize("rate", [1.0, 2.5, 10.0])
def test_a_forest_learns_and_saves_as_with_numpys_draws(rate: float, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3_000, 3))
    y = (z[:, 0] > 1.2).astype(np.int64)
    ours = HoeffdingForest(6, grace_period=40, rate=rate, seed=5)
    for start in range(0, 1_500, 37):  # batches of any size, a save in between
        ours.learn_many(z[start : start + 37], y[start : start + 37], np.ones(37))
    ours = pickle.loads(pickle.dumps(ours))
    ours.learn_many(z[1_500:], y[1_500:], np.ones(1_500))
    saved = pickle.dumps(ours)
    numpy_drawn(monkeypatch)
    theirs = HoeffdingForest(6, grace_period=40, rate=rate, seed=5)
    for start in range(0, 1_500, 37):
        theirs.learn_many(z[start : start + 37], y[start : start + 37], np.ones(37))
    theirs.learn_many(z[1_500:], y[1_500:], np.ones(1_500))
    assert np.array_equal(ours.leaves, theirs.leaves) and np.array_equal(ours.nodes, theirs.nodes)
    assert pickle.loads(saved).rng.bit_generator.state == theirs.rng.bit_generator.state
