"""Delayed labels: scored-but-unlabelled events wait here until their label arrives.

The store is bounded twice: at most ``max_pending`` entries (the oldest is evicted first) and a
TTL in *event* time (so a replay behaves like the live run). A label joins by event id and brings
back the feature row (standardised and raw values) and the score the event had when it was served, so learning and
the prequential metrics use what was true at scoring time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)  # not frozen, as the types of stream.events: one per event
class Pending:
    id: str
    ts: float
    row: np.ndarray  # the event's feature row (standardised, then raw)
    score: float
    alert: bool
    candidates: np.ndarray  # every candidate model's score, for the contest


class LabelJoin:
    """Bounded id -> :class:`Pending` store with TTL expiry."""

    def __init__(self, max_pending: int, ttl_seconds: float) -> None:
        self.max_pending = max_pending
        self.ttl = ttl_seconds
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.expired_total = 0

    def __len__(self) -> int:
        return len(self.pending)

    def hold(self, entry: Pending) -> list[Pending]:
        """Keep ``entry``; returns what had to leave (TTL passed or the store was full)."""
        self.pending[entry.id] = entry
        gone = self.expire(entry.ts)
        while len(self.pending) > self.max_pending:
            gone.append(self.pending.popitem(last=False)[1])
            self.expired_total += 1
        return gone

    def join(self, event_id: str) -> Pending | None:
        """The pending event with this id (removed from the store), or None if unknown."""
        return self.pending.pop(event_id, None)

    def expire(self, now: float) -> list[Pending]:
        """Entries older than the TTL at event time ``now``."""
        gone: list[Pending] = []
        limit = now - self.ttl
        while self.pending:
            oldest = next(iter(self.pending.values()))
            if oldest.ts >= limit:
                break
            gone.append(self.pending.popitem(last=False)[1])
        self.expired_total += len(gone)
        return gone


class RecentIds:
    """The last ``size`` event ids, to reject duplicates without unbounded memory.

    >>> ids = RecentIds(2)
    >>> [ids.add(i) for i in ("a", "b", "a", "c", "a")]
    [True, True, False, True, True]
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.ids

    def any_of(self, event_ids: list[str]) -> bool:
        """Whether any of ``event_ids`` was seen recently (one C-level pass)."""
        return not self.ids.keys().isdisjoint(event_ids)

    def add_many(self, event_ids: list[str]) -> None:
        """Remember ids known to be new (``add`` of each)."""
        self.ids.update(dict.fromkeys(event_ids))
        while len(self.ids) > self.size:
            self.ids.popitem(last=False)

    def add(self, event_id: str) -> bool:
        """False if ``event_id`` was seen recently (a duplicate)."""
        if event_id in self.ids:
            return False
        self.ids[event_id] = None
        if len(self.ids) > self.size:
            self.ids.popitem(last=False)
        return True
