from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from stream.labels import LabelJoin, Pending, RecentIds


def entry(i: int, ts: float) -> Pending:
    return Pending(f"e{i}", ts, np.zeros(2), 0.1, False, False, np.zeros(1))


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


@pytest.mark.parametrize("size", [1, 7, 50])
def test_recent_ids_in_blocks_remember_what_one_by_one_would(size: int) -> None:
    """One by one, the reference is an ordered dict of the last ``size`` ids; in blocks (what the
    block path adds: new, distinct ids), the same ids in the same order, also past the ring's end."""
    rng = np.random.default_rng(size)
    reference: OrderedDict[str, None] = OrderedDict()
    one, blocks = RecentIds(size), RecentIds(size)
    for _ in range(300):
        ids = [f"e{i}" for i in rng.integers(0, 8 * size + 20, size=int(rng.integers(1, 2 * size + 10)))]
        seen = [i in reference for i in ids]
        assert blocks.any_of(ids) == any(seen) and [i in one for i in ids] == seen
        for i in ids:
            assert one.add(i) == (i not in reference)
            if i not in reference:
                reference[i] = None
                while len(reference) > size:
                    reference.popitem(last=False)
        if len(set(ids)) == len(ids) and not any(seen):
            blocks.add_many(ids)
        else:
            for i in ids:
                blocks.add(i)
        assert one.in_order() == blocks.in_order() == list(reference)
        assert len(blocks) == len(reference)


def test_recent_ids_saved_as_an_ordered_dict_load_in_order() -> None:
    state = {"size": 3, "ids": OrderedDict.fromkeys(["a", "b", "c"])}
    ids = RecentIds.__new__(RecentIds)
    ids.__setstate__(state)
    assert ids.in_order() == ["a", "b", "c"] and "a" in ids
    ids.add("d")
    assert ids.in_order() == ["b", "c", "d"] and "a" not in ids


@pytest.mark.parametrize("odd", ["", "with\x00nul"])
def test_recent_ids_saved_and_loaded_go_on_as_the_original(odd: str) -> None:
    """Saved as one joined string (or as a list when an id holds the separator), the ids load in
    their order: the loaded one rejects and forgets exactly as the original does."""
    import pickle

    for filled in (0, 3, 7, 12):  # empty, part full, full, wrapped
        ids = RecentIds(7)
        for i in range(filled):
            ids.add(f"e{i}{odd}")
        loaded = pickle.loads(pickle.dumps(ids))
        assert loaded.in_order() == ids.in_order() and len(loaded) == len(ids)
        for i in range(filled - 9, filled + 9):
            assert loaded.add(f"e{i}{odd}") == ids.add(f"e{i}{odd}")
        assert loaded.in_order() == ids.in_order()
    old = RecentIds(3)  # saved with its set and ring, as before
    for i in "abcd":
        old.add(i)
    legacy = RecentIds.__new__(RecentIds)
    legacy.__setstate__(dict(old.__dict__))
    assert legacy.in_order() == ["b", "c", "d"] and legacy.add("e") and legacy.in_order() == ["c", "d", "e"]
