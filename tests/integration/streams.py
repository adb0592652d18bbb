"""The streams the integration tests send: synthetic fraud-like events, delayed labels, bad records."""

from __future__ import annotations

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
