"""Two serve processes in one group: partitions split; one dies; the other takes over from its checkpoint."""

from __future__ import annotations

import collections
import re
import signal
import time
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import Service, Topics, consume_all, produce
from tests.integration.streams import events_and_labels

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def owned(service: Service) -> set[str]:
    """Partitions of the events topic this process reports lag for (= owns)."""
    text = service.metrics()
    return {m.group(1) for m in re.finditer(r'skewstream_consumer_lag\{partition="(\d+)",topic="events-', text)}


def _split(mine: set[str], theirs: set[str]) -> bool:
    """Both own partitions, none twice, all three owned (metrics lag a rebalance by up to 1 s)."""
    return bool(mine and theirs and not mine & theirs and mine | theirs == {"0", "1", "2"})


def _renamed(value: bytes, new_id: str) -> tuple[bytes, bytes]:
    record = orjson.loads(value)
    record.update(id=new_id, label=None)
    return new_id.encode(), orjson.dumps(record)


def test_partitions_split_and_move_to_the_survivor_at_checkpoint_positions(kafka: str, topics: Topics, tmp_path: Path) -> None:
    events, labels, _ = events_and_labels(20_000, seed=5)
    a = Service(kafka, topics, tmp_path, instance="a", every_events=1000).start()
    b = Service(kafka, topics, tmp_path, instance="b", every_events=1000).start()
    try:
        for service in (a, b):
            service.wait_for("skewstream_model_version", 1, timeout=60)
        deadline = time.monotonic() + 60
        wake = 0
        while time.monotonic() < deadline and not _split(owned(a), owned(b)):
            # Unlabelled events with fresh ids, on every partition, until both report theirs.
            batch = [_renamed(value, f"wake-{wake}-{i}") for i, (_, value) in enumerate(events[:30])]
            produce(kafka, topics.events, batch)
            wake += 1
            time.sleep(1.0)
        assert _split(owned(a), owned(b)), (owned(a), owned(b))

        produce(kafka, topics.events, events)
        produce(kafka, topics.labels, labels)
        a.wait_for("skewstream_events_scored_total", 1500)
        a.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        a.proc.wait(timeout=30)  # type: ignore[union-attr]

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and owned(b) != {"0", "1", "2"}:
            time.sleep(0.5)
        assert owned(b) == {"0", "1", "2"}, b.output()
        expected = {key.decode() for key, _ in events}
        while time.monotonic() < deadline:
            scores = collections.Counter(m.key.decode() for m in consume_all(kafka, topics.scores, quiet_seconds=1.0))
            if set(scores) >= expected:
                break
        assert set(scores) >= expected  # every event scored, by one process or the other
        repeated = sum(c - 1 for c in scores.values())
        assert repeated <= 1000 + 3 * 512  # b resumed a's partitions at a's last checkpoint
        learned = a.learned() + b.learned()
        assert len(learned) == len(set(learned))  # no event learned twice across the group
        assert b.stop(signal.SIGTERM) == 0
    finally:
        for service in (a, b):
            if service.proc and service.proc.poll() is None:
                service.proc.kill()
