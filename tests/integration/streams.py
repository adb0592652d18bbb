"""The streams the integration tests send: synthetic fraud-like events, delayed labels, bad records."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import orjson

from stream.synth import ABRUPT, event_record, generate

BAD_RECORDS: list[tuple[bytes, str]] = (
    [(b"{broken json %d" % i, "invalid_json") for i in range(10)]
    + [(orjson.dumps({"ts": 1.0, "f0": 1.0, "n": i}), "missing_id") for i in range(10)]
    + [(orjson.dumps({"id": f"bad-label-{i}", "label": 5, "f0": 1.0}), "bad_label") for i in range(10)]
    + [(orjson.dumps({"id": f"bad-feature-{i}", "f0": "high"}), "bad_feature") for i in range(10)]
    + [(orjson.dumps({"id": f"e{i:08d}", "ts": 1.0, "f0": 1.0}), "duplicate_id") for i in range(10)]
)


def events_and_labels(n: int, seed: int = 3, delayed_share: float = 0.3) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], np.ndarray]:
    """Keyed event messages (1% positives), keyed label messages for the delayed ones, and y."""
    stream = generate(replace(ABRUPT, n=n, seed=seed))
    rng = np.random.default_rng(seed)
    delayed = rng.random(n) < delayed_share
    delay = rng.uniform(1.0, 60.0, size=n)  # seconds of event time until the label is known
    events, labels = [], []
    for i in range(n):
        record = event_record(stream, i, labelled=not delayed[i])
        key = str(record["id"]).encode()
        events.append((key, orjson.dumps(record)))
        if delayed[i]:
            label = {"id": key.decode(), "ts": float(stream.ts[i] + delay[i]), "label": int(stream.y[i])}
            labels.append((key, orjson.dumps(label)))
    return events, labels, stream.y


def with_bad_records(events: list[tuple[bytes, bytes]]) -> list[tuple[bytes | None, bytes]]:
    """The events with the 50 bad records spread through them (duplicates after their originals)."""
    mixed: list[tuple[bytes | None, bytes]] = list(events)
    step = len(events) // (len(BAD_RECORDS) + 1)
    for j, (raw, _) in enumerate(BAD_RECORDS):
        mixed.insert(step * (j + 1) + j, (b"bad" if b'"id"' not in raw else orjson.loads(raw).get("id", "x").encode(), raw))
    return mixed


def _bad_record(rng: random.Random, i: int, valid: list[bytes], position: int) -> tuple[bytes, str | None]:
    """One bad record of a random kind, and the reason it must get (None: any reason)."""
    kind = rng.choices(range(11), weights=[10, 10, 10, 10, 10, 10, 1, 10, 10, 10, 10])[0]
    if kind == 0:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))), None
    if kind == 1:  # broken JSON: a valid record cut short
        raw = valid[rng.randrange(len(valid))]
        return raw[: rng.randint(1, len(raw) - 2)], None
    if kind == 2:  # wrong types
        value = rng.choice(["high", [1, 2], {"a": 1}, True, None])
        return orjson.dumps({"id": f"wrong-{i}", "f0": value, "f1": value}), None
    if kind == 3:  # huge values
        return b'{"id": "huge-%d", "f0": 1e%d}' % (i, rng.randint(16, 999)), None
    if kind == 4:  # NaN / inf literals
        return b'{"id": "nan-%d", "f0": %s}' % (i, rng.choice([b"NaN", b"Infinity", b"-Infinity"])), "invalid_json"
    if kind == 5:  # missing fields
        return rng.choice([orjson.dumps({"f0": 1.0}), orjson.dumps({"id": f"bare-{i}"}), orjson.dumps({"ts": 1.0})]), None
    if kind == 6:  # giant line
        return b'{"id": "giant-%d", "f0": 1, "pad": "%s"}' % (i, b"x" * rng.randint(70_000, 150_000)), "too_large"
    if kind == 7:  # invalid UTF-8
        return b'{"id": "utf-%d", "f0": 1, "note": "\xff\xfe%s"}' % (i, bytes([rng.randrange(128, 256)])), "invalid_encoding"
    if kind == 8:  # duplicate of an event already sent
        return valid[rng.randrange(position)], "duplicate_id"
    if kind == 9:  # a label for an id never seen
        return orjson.dumps({"id": f"unknown-{i}", "label": rng.randint(0, 1)}), "unknown_label_id"
    return orjson.dumps({"id": f"label-{i}", "label": rng.choice([2, -1, "yes", 0.5]), "f0": 1.0}), "bad_label"


def mixed_with_random_bad_records(valid: list[bytes], n_bad: int, seed: int) -> tuple[list[bytes], list[tuple[bytes, str | None]]]:
    """``valid`` with ``n_bad`` seeded bad records spread through it, and those records."""
    rng = random.Random(seed)
    slots = sorted(rng.randrange(1, len(valid)) for _ in range(n_bad))
    bad = [_bad_record(rng, i, valid, position) for i, position in enumerate(slots)]
    mixed: list[bytes] = []
    it = iter(zip(slots, bad))
    pending = next(it, None)
    for position, raw in enumerate(valid):
        while pending is not None and pending[0] == position:
            mixed.append(pending[1][0])
            pending = next(it, None)
        mixed.append(raw)
    return mixed, bad
