"""The compiled logistic regression is river's LogisticRegression(SGD), step for step."""

from __future__ import annotations

import numpy as np
import river.linear_model
import river.optim

from stream.linear import LogisticRegression


def test_same_probabilities_as_river_on_a_weighted_stream() -> None:
    rng = np.random.default_rng(3)
    ours = LogisticRegression(learning_rate=0.05)
    theirs = river.linear_model.LogisticRegression(optimizer=river.optim.SGD(0.05))
    worst = 0.0
    for _ in range(3_000):
        z = rng.normal(size=4)
        y = int(z @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal() > 1.5)
        w = 7.0 if y else 1.0
        x = {str(i): float(v) for i, v in enumerate(z)}
        worst = max(worst, abs(ours.proba(z) - theirs.predict_proba_one(x)[True]))
        ours.learn(z, y, w)
        theirs.learn_one(x, y, w=w)
    assert worst < 1e-9
