from __future__ import annotations

import numpy as np

from stream.labels import LabelJoin, Pending


def entry(i: int, ts: float) -> Pending:
    return Pending(f"e{i}", ts, np.zeros(2), 0.1, False, np.zeros(1))


def test_join_returns_the_held_event_once() -> None:
    store = LabelJoin(max_pending=10, ttl_seconds=100)
    store.hold(entry(1, 0.0))
    assert store.join("e1") is not None
    assert store.join("e1") is None
    assert len(store) == 0


def test_ttl_in_event_time_and_capacity_bound_the_store() -> None:
    store = LabelJoin(max_pending=3, ttl_seconds=10)
    gone = [g.id for i in range(5) for g in store.hold(entry(i, float(i)))]
    assert gone == ["e0", "e1"]  # capacity
    gone = [g.id for g in store.hold(entry(9, 14.5))]
    assert gone == ["e2", "e3", "e4"]  # older than 14.5 - 10
    assert store.expired_total == 5 and len(store) == 1
