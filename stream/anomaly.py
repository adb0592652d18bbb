"""The unsupervised anomaly score served beside the fraud probability.

It learns only from majority and unlabelled events (the "normal" traffic), so a new kind of fraud
that no label has described yet still stands out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import river.anomaly

from stream.config import AnomalySettings
from stream.sampling import VQSampler


class AnomalyScorer:
    """``score`` any event, ``learn`` from normal ones; kind ``hst``, ``codebook`` or ``none``."""

    def __init__(self, settings: AnomalySettings, seed: int) -> None:
        self.settings = settings
        self.offered = 0
        self.hst: Any = None
        if settings.kind == "hst":
            self.hst = river.anomaly.HalfSpaceTrees(
                n_trees=settings.trees, height=settings.height, window_size=settings.window, seed=seed
            )

    def score(self, z: np.ndarray, sampler: VQSampler | None) -> float:
        if self.hst is not None:
            return float(self.hst.score_one(_squash(z)))
        if self.settings.kind == "codebook" and sampler is not None:
            return sampler.distance(z)
        return 0.0

    def learn(self, z: np.ndarray) -> None:
        if self.hst is None:
            return
        self.offered += 1
        if self.offered % self.settings.learn_every == 0:
            self.hst.learn_one(_squash(z))


def _squash(z: np.ndarray) -> dict[int, float]:
    # HalfSpaceTrees splits the unit cube; a logistic maps z-scores into it without clipping tails.
    return dict(enumerate((1.0 / (1.0 + np.exp(-z / 2.0))).tolist()))
