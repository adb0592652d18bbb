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
    """``score_many`` any events, ``learn`` from normal ones; kind ``hst``, ``codebook`` or ``none``.

    Learning waits in a short list until ``flush`` (the end of a micro-batch), so the trees take a
    run of events in one kernel call; the order is kept.
    """

    def __init__(self, settings: AnomalySettings, seed: int) -> None:
        self.settings = settings
        self.offered = 0
        self.hst: HalfSpaceTrees | None = None
        if settings.kind == "hst":
            self.hst = HalfSpaceTrees(settings.trees, settings.height, settings.window, seed)
        self.pending: list[np.ndarray] = []

    def score_many(self, zs: np.ndarray, sampler: VQSampler | None) -> np.ndarray:
        if self.hst is not None:
            return self.hst.score_many(zs)  # learning waits for flush(), at the end of a micro-batch
        if self.settings.kind == "codebook" and sampler is not None:
            return np.array([sampler.distance(z) for z in zs])
        return np.zeros(zs.shape[0])

    def learn(self, z: np.ndarray) -> None:
        self.learn_many(z[None, :])

    def learn_many(self, zs: np.ndarray) -> None:
        """Offer normal events, in order; every ``learn_every``-th is learned (at ``flush``)."""
        if self.hst is None:
            return
        every = self.settings.learn_every
        first = (every - 1 - self.offered % every) % every  # the next one due, counted from 0
        self.offered += zs.shape[0]
        if first < zs.shape[0]:
            self.pending.append(zs[first::every])

    def flush(self) -> None:
        if self.hst is not None and self.pending:
            self.hst.learn_many(np.concatenate(self.pending))
            self.pending = []
