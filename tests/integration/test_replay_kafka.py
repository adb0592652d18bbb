"""replay --kafka-topic: a time or offset window of a topic through the same pipeline, no group commits."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from stream.cli import main
from tests.integration.conftest import Topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _send_at(kafka: str, topic: str, ids: range, at_ms: int) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka)
    for i in ids:
        value = orjson.dumps({"id": f"r{i}", "ts": i, "label": i % 10 == 0, "a": float(i % 13), "b": 1.0})
        producer.send(topic, key=f"r{i}".encode(), value=value, timestamp_ms=at_ms + i)
    producer.flush()
    producer.close()


def test_time_window_and_offset_window(kafka: str, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t0 = (int(time.time()) - 3_600) * 1000  # whole seconds: the window bounds are ISO seconds
    _send_at(kafka, topics.events, range(0, 300), t0)
    _send_at(kafka, topics.events, range(300, 600), t0 + 600_000)
    _send_at(kafka, topics.events, range(600, 900), t0 + 1_200_000)
    monkeypatch.setenv("SKEWSTREAM_KAFKA__BOOTSTRAP_SERVERS", kafka)
    out = tmp_path / "window.jsonl"
    start, end = (time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime((t0 + ms) / 1000)) for ms in (600_000, 1_200_000))
    code = main(["replay", "--kafka-topic", topics.events, "--from-time", start, "--to-time", end,
                 "--out", str(out), "--model", "logreg", "--no-progress"])  # fmt: skip
    assert code == 0
    ids = [orjson.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(300, 600))  # exactly the window, once each

    out_all = tmp_path / "all.jsonl"
    assert main(["replay", "--kafka-topic", topics.events, "--from-offset", "0", "--out", str(out_all), "--no-progress"]) == 0
    assert out_all.read_bytes().count(b"\n") == 900

    probe = KafkaConsumer(bootstrap_servers=kafka, group_id="skewstream", enable_auto_commit=False)
    from kafka import TopicPartition

    assert all(probe.committed(TopicPartition(topics.events, p)) is None for p in range(3))  # live group untouched
    probe.close()


def test_missing_topic_is_a_clear_error(kafka: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SKEWSTREAM_KAFKA__BOOTSTRAP_SERVERS", kafka)
    assert main(["replay", "--kafka-topic", "no-such-topic", "--no-progress"]) == 2  # a setting at fault: fails fast
    assert "no-such-topic" in capsys.readouterr().err
