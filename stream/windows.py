"""Ring buffers of recent values and their sorted views, kept current by merges.

The budget cut, the balanced cut, the candidates' contest and the rolling quality all look at the
last N scores (and labels): a ring buffer holds them in bounded memory, and a sorted view of it is
brought up to date by merging what the ring's writes since the last look changed, not by sorting
the window again.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def ring_write(values: np.ndarray, labels: np.ndarray, filled: int, new_values: np.ndarray, new_labels: np.ndarray) -> int:
    """Append columns to ring buffers (``values``: rows x size, ``labels``: size) that hold ``filled``
    so far; returns the new count. Only the newest ``size`` columns of a long run are kept.
    (Compiled: it runs at every ranking and every few labels, mostly for a column or two.)"""
    size, n = labels.shape[0], new_labels.shape[0]
    for j in range(max(0, n - size), n):
        slot = (filled + j) % size
        for r in range(values.shape[0]):
            values[r, slot] = new_values[r, j]
        labels[slot] = new_labels[j]
    return int(filled + n)


class Ring:
    """A fixed-size ring buffer of floats (optionally paired with 0/1 labels)."""

    def __init__(self, size: int) -> None:
        self.values = np.zeros(size)
        self.labels = np.zeros(size, dtype=np.int8)
        self.n = 0

    def push_many(self, values: np.ndarray, labels: np.ndarray) -> None:
        self.n = ring_write(self.values[None, :], self.labels, self.n, values[None, :], labels)

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        m = min(self.n, self.values.shape[0])
        return self.values[:m], self.labels[:m]


def ring_writes(shadow: np.ndarray, values: np.ndarray, synced: int, filled: int) -> tuple[np.ndarray, np.ndarray]:
    """What a ring buffer's writes ``synced`` .. ``filled - 1`` (fewer than its size) changed, per
    row: the values they overwrote (those past the first lap) and the values they wrote; ``shadow``
    (the ring as it was at write ``synced``) takes the new ones."""
    size = values.shape[1]
    writes = np.arange(synced, filled)
    slots = writes % size
    gone, new = shadow[:, slots[writes >= size]], values[:, slots]
    shadow[:, slots] = new
    return gone, new


class SortedView:
    """A view of a ring buffer's window worked out from it and kept current (sorted, merged): not
    saved in a checkpoint, only its ``size``; the first ask after a restore starts afresh."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._reset()

    def _reset(self) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, object]:
        return {"size": self.size}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.size = state["size"]  # type: ignore[assignment]
        self._reset()


class Ranked:
    """Each row of a ring buffer's filled part, sorted, brought up to date when asked.

    The ring took writes number ``synced`` .. ``filled - 1`` since the last ask: each one's slot
    leaves with the value it held (kept in ``shadow``) and enters with its new one, so an ask costs a
    merge per row, not a sort of the window. The sorted rows are not saved in a checkpoint: the first
    ask after a restore sorts afresh.
    """

    def __init__(self, rows: int, size: int) -> None:
        self.shape = (rows, size)
        self._reset()

    def _reset(self) -> None:
        self.shadow = np.zeros(self.shape)
        self.rows = [np.zeros(0) for _ in range(self.shape[0])]
        self.synced = -1  # nothing sorted yet

    def restart(self) -> None:
        """The ring starts over (its writes are counted from 0 again): the next ask sorts afresh."""
        self.synced = -1

    def __getstate__(self) -> dict[str, object]:
        return {"shape": self.shape}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.shape = state["shape"]  # type: ignore[assignment]
        self._reset()

    def update(self, values: np.ndarray, filled: int) -> list[np.ndarray]:
        """``np.sort`` of each row of ``values[:, :min(filled, size)]`` (``filled``: writes so far)."""
        size = values.shape[1]
        if self.synced < 0 or not self.synced <= filled < self.synced + size:  # new, restarted or all rewritten
            m = min(filled, size)
            self.rows = [np.sort(row[:m]) for row in values]
            self.shadow[:, :m] = values[:, :m]
        elif filled > self.synced:
            gone, new = ring_writes(self.shadow, values, self.synced, filled)
            for i in range(values.shape[0]):
                merged = np.empty(self.rows[i].shape[0] - gone.shape[1] + new.shape[1])
                replace_sorted(self.rows[i], np.sort(gone[i]), np.sort(new[i]), merged)
                self.rows[i] = merged
        self.synced = filled
        return self.rows


@njit(cache=True)
def replace_sorted(ranked: np.ndarray, gone: np.ndarray, new: np.ndarray, out: np.ndarray) -> None:
    """``out`` = sorted ``ranked`` without ``gone`` (sorted; one occurrence each, all in it) and with
    ``new`` (sorted): one pass, no sort."""
    i = j = k = o = 0
    while i < ranked.shape[0]:
        if j < gone.shape[0] and ranked[i] == gone[j]:
            i += 1
            j += 1
            continue
        while k < new.shape[0] and new[k] < ranked[i]:
            out[o] = new[k]
            o += 1
            k += 1
        out[o] = ranked[i]
        o += 1
        i += 1
    while k < new.shape[0]:
        out[o] = new[k]
        o += 1
        k += 1
