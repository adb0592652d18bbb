from __future__ import annotations

import numpy as np

from stream.labels import LabelJoin, Pending, RecentIds


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


def test_recent_ids_in_blocks_remember_what_one_by_one_would() -> None:
    rng = np.random.default_rng(3)
    one, blocks = RecentIds(50), RecentIds(50)
    for _ in range(40):
        ids = [f"e{i}" for i in rng.integers(0, 400, size=int(rng.integers(1, 30)))]
        seen = [i in one for i in ids]
        assert blocks.any_of(ids) == any(seen)
        for i in ids:
            one.add(i)
        if len(set(ids)) == len(ids) and not any(seen):  # the block path takes only new, distinct ids
            blocks.add_many(ids)
        else:
            for i in ids:
                blocks.add(i)
        assert list(blocks.ids) == list(one.ids)
