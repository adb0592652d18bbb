"""A sink that cannot deliver stops the service without committing; a restart loses nothing."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from tests.integration.conftest import Service, Topics, consume_all, produce
from tests.integration.streams import events_and_labels

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def positions(tmp_path: Path, topic: str) -> dict[str, int]:
    folder = tmp_path / "checkpoints" / "positions"
    return {p.name: int(p.read_text()) for p in folder.glob(f"{topic}.*") if not p.name.endswith(".tmp")}


def test_deleted_scores_topic_stops_without_commit_and_restart_recovers(kafka: str, topics: Topics, tmp_path: Path) -> None:
    events, _, _ = events_and_labels(6_000, seed=11, delayed_share=0.0)
    fast_fail = "max_block_ms = 3000, delivery_timeout_ms = 4000, request_timeout_ms = 2000, retries = 3"
    service = Service(kafka, topics, tmp_path, every_events=500, producer=fast_fail).start()
    produce(kafka, topics.events, events[:2000])
    service.wait_for("skewstream_events_scored_total", 2000)
    time.sleep(6)  # a commit point (every 5 s) saves positions for those 2000
    before = positions(tmp_path, topics.events)
    assert sum(before.values()) == 2000, service.output()

    admin = KafkaAdminClient(bootstrap_servers=kafka)
    admin.delete_topics([topics.scores])
    time.sleep(2)
    produce(kafka, topics.events, events[2000:])
    code = service.proc.wait(timeout=120)  # type: ignore[union-attr]
    assert code == 3, service.output()
    assert "stopped without committing" in service.output()
    assert positions(tmp_path, topics.events) == before  # nothing after the failure was committed

    admin.create_topics([NewTopic(topics.scores, 3, 1)])
    admin.close()
    again = Service(kafka, topics, tmp_path, every_events=500, port=service.port).start()
    try:
        again.wait_for("skewstream_events_scored_total", 1, timeout=60)
        expected = {key.decode() for key, _ in events[2000:]}
        deadline = time.monotonic() + 90
        seen: set[str] = set()
        while time.monotonic() < deadline and not expected <= seen:
            seen = set(collections.Counter(m.key.decode() for m in consume_all(kafka, topics.scores, quiet_seconds=1.0)))
        assert expected <= seen  # every event whose score was lost is scored after the restart
        assert again.stop(signal.SIGTERM) == 0
    finally:
        if again.proc and again.proc.poll() is None:
            again.proc.kill()


def test_a_missing_topic_fails_fast_with_one_line_naming_the_setting(kafka: str, topics: Topics, tmp_path: Path) -> None:
    service = Service(kafka, Topics(f"{topics.events}-missing", topics.labels, topics.scores, topics.dead), tmp_path).start()
    assert service.proc is not None
    assert service.proc.wait(timeout=60) == 2
    errors = [line for line in service.output().splitlines() if line.startswith("skewstream: error:")]
    assert len(errors) == 1 and "kafka.events_topic" in errors[0] and "create it" in errors[0], service.output()
