"""The unsupervised anomaly score served beside the fraud probability.

It learns only from majority and unlabelled events (the "normal" traffic), so a new kind of fraud
that no label has described yet still stands out.
"""

from __future__ import annotations

import numpy as np

from stream.config import AnomalySettings
from stream.halfspace import HalfSpaceTrees
from stream.sampling import VQSampler


class AnomalyScorer:
    """``score`` any event, ``learn`` from normal ones; kind ``hst``, ``codebook`` or ``none``."""

    def __init__(self, settings: AnomalySettings, seed: int) -> None:
        self.settings = settings
        self.offered = 0
        self.hst: HalfSpaceTrees | None = None
        if settings.kind == "hst":
            self.hst = HalfSpaceTrees(settings.trees, settings.height, settings.window, seed)

    def score(self, z: np.ndarray, sampler: VQSampler | None) -> float:
        if self.hst is not None:
            return self.hst.score(z)
        if self.settings.kind == "codebook" and sampler is not None:
            return sampler.distance(z)
        return 0.0

    def learn(self, z: np.ndarray) -> None:
        if self.hst is None:
            return
        self.offered += 1
        if self.offered % self.settings.learn_every == 0:
            self.hst.learn(z)
