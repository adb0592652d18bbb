"""Event fields -> a fixed-order float row: the standardised vector, then the raw values.

The order is fixed (from config, or frozen from the first valid event) so that the codebook, the
label store and the models always see the same coordinates. Standardisation is Welford's online
mean/variance over *every* scored event, not only the ones the sampler keeps for training, so it is
not biased by undersampling.

Each row carries both: ``row[:dim]`` standardised (distances and linear models need one scale) and
``row[dim:]`` raw, missing values imputed (trees need no scale, and a running standardisation is
itself a drift for them: when the stream's mean moves, the same value lands on the other side of a
split learned earlier).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

import numpy as np
from numba import njit

from stream.events import BadRecord, Event

# Standardised values are clipped: one absurd value must not blow up a linear model.
_CLIP = 50.0


@njit(cache=True, inline="always")
def welford_standardise(
    raw: np.ndarray, count: int, mean: np.ndarray, m2: np.ndarray, out: np.ndarray
) -> None:
    """Fold ``raw`` into (count, mean, m2) - count already includes it - and write z-scores."""
    for i in range(raw.shape[0]):
        delta = raw[i] - mean[i]
        mean[i] += delta / count
        m2[i] += delta * (raw[i] - mean[i])
        std = np.sqrt(m2[i] / (count - 1)) if count > 1 else 0.0
        z = (raw[i] - mean[i]) / std if std > 1e-12 else 0.0
        out[i] = min(max(z, -_CLIP), _CLIP)


@njit(cache=True)
def standardise_rows(raw: np.ndarray, count: int, mean: np.ndarray, m2: np.ndarray, out: np.ndarray) -> int:
    """``welford_standardise`` of each row in order, a NaN (missing) imputed with the running mean
    first; returns how many were imputed."""
    imputed = 0
    for r in range(raw.shape[0]):
        for i in range(raw.shape[1]):
            if np.isnan(raw[r, i]):
                raw[r, i] = mean[i]
                imputed += 1
        welford_standardise(raw[r], count + r + 1, mean, m2, out[r])
    return imputed


class FeatureSpace:
    """Fixed feature order, running-mean imputation, online standardisation.

    >>> from stream.events import Event
    >>> space = FeatureSpace(None)
    >>> for v in (1.0, 2.0, 3.0):
    ...     row = space.vector(Event("e", 0.0, {"a": v, "b": 2 * v}, None))
    >>> space.names, [round(float(t), 3) for t in row]
    (['a', 'b'], [1.0, 1.0, 3.0, 6.0])
    """

    def __init__(self, names: list[str] | None) -> None:
        self.names: list[str] | None = list(names) if names else None
        self.count = 0
        self.mean = np.zeros(len(self.names or ()))
        self.m2 = np.zeros(len(self.names or ()))
        self.known = set(self.names or ())
        self.imputed_total = 0
        self.extra_total = 0

    @property
    def dim(self) -> int:
        return len(self.names or ())

    def vector(self, event: Event) -> np.ndarray:
        """The row of ``event`` (standardised, then raw); updates the running statistics."""
        self.check(event)
        vector: np.ndarray = self.vectors([event])[0]
        return vector

    def check(self, event: Event) -> None:
        """Raise ``BadRecord`` if ``event`` cannot be vectorised (the first one fixes the order)."""
        if self.names is None:
            self._freeze(event)
        for key in event.non_numeric:
            if key in self.known:
                raise BadRecord("bad_feature", f"feature '{key}' is not a number")

    def vectors(self, events: list[Event]) -> np.ndarray:
        """The rows of checked events, in order (``dim`` standardised columns, then ``dim`` raw ones,
        missing values imputed); updates the running statistics."""
        names = self.names or []
        try:  # every feature present, the common case: one C-level lookup per event
            take = itemgetter(*names)
            values: list[Any] = [take(event.x) for event in events]
        except (KeyError, TypeError):  # some missing (imputed below), or no names at all
            nan = float("nan")
            values = [[event.x.get(name, nan) for name in names] for event in events]
        raw = np.array(values, dtype=np.float64).reshape(len(events), len(names))
        rows, imputed = self._standardise(raw)
        self.extra_total += sum(len(event.x) for event in events) - (raw.size - imputed)
        return rows

    def columns(self, names: tuple[str, ...]) -> np.ndarray | None:
        """Where each feature is among ``names`` (a block's fields), or None unless they are exactly
        the features; the first block fixes the order, as the first event does."""
        if self.names is None:
            self._freeze_names(list(names))
        if len(names) != self.dim or set(names) != self.known:
            return None
        index = {name: i for i, name in enumerate(names)}
        return np.array([index[name] for name in self.names or ()], dtype=np.int64)

    def rows(self, raw: np.ndarray) -> np.ndarray:
        """The rows of a block's values, every feature present, in feature order (see ``columns``)."""
        return self._standardise(raw)[0]

    def _standardise(self, raw: np.ndarray) -> tuple[np.ndarray, int]:
        """Rows from raw values in feature order (NaN: missing, imputed in place), and how many were
        imputed; updates the running statistics."""
        rows = np.empty((raw.shape[0], 2 * raw.shape[1]))
        imputed = standardise_rows(raw, self.count, self.mean, self.m2, rows[:, : raw.shape[1]])
        rows[:, raw.shape[1] :] = raw
        self.count += raw.shape[0]
        self.imputed_total += imputed
        return rows, imputed

    def _freeze(self, event: Event) -> None:
        if not event.x:
            raise BadRecord("no_features", "first event has no numeric feature to freeze the order")
        self._freeze_names(list(event.x))

    def _freeze_names(self, names: list[str]) -> None:
        self.names = names
        self.mean = np.zeros(len(names))
        self.m2 = np.zeros(len(names))
        self.known = set(names)
