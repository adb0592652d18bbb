"""Serve wiring with in-memory fakes: seeks on assignment, commit point on revocation, health."""

from __future__ import annotations

from pathlib import Path

from connectors.kafka import Outage
from connectors.memory import MemoryDeadLetters, MemorySink, MemorySource
from stream.app import make_decoder
from stream.config import load_settings
from stream.loop import CommitPolicy, Ports, Runner
from stream.pipeline import Pipeline
from stream.positions import PositionStore
from stream.service import KafkaWiring
from tests.conftest import small_settings


class FakeEvents(MemorySource):
    def __init__(self) -> None:
        super().__init__([])
        self.sought: dict[tuple[str, int], int] = {}
        self.parts: list[tuple[str, int]] = []

    def seek(self, offsets: dict[int, int], topic: str | None = None) -> None:  # type: ignore[override]
        for partition, offset in offsets.items():
            self.sought[(topic or "events", partition)] = offset

    def assignment(self) -> list[tuple[str, int]]:
        return self.parts


def wiring(tmp_path: Path) -> tuple[KafkaWiring, Runner, FakeEvents, MemorySink]:
    settings = small_settings(kafka={"events_topic": "events", "labels_topic": "labels"})
    events, sink = FakeEvents(), MemorySink()
    runner = Runner(Pipeline(settings), make_decoder(settings), Ports(events, sink, MemoryDeadLetters()), None, CommitPolicy(10, 1.0))
    return KafkaWiring(runner, events, Outage("127.0.0.1:9"), PositionStore(tmp_path), settings), runner, events, sink


def test_assignment_seeks_to_the_furthest_known_position(tmp_path: Path) -> None:
    wire, runner, events, _ = wiring(tmp_path)
    runner.positions["events"] = {0: 100, 1: 50}
    wire.store.save("events", {0: 90, 1: 70})  # partition 1 advanced by another process
    wire.on_assigned([("events", 0), ("events", 1), ("events", 2), ("labels", 0)])
    assert events.sought == {("events", 0): 100, ("events", 1): 70}  # 2 and labels: no position yet
    assert runner.positions["events"] == {0: 100, 1: 70}


def test_revocation_runs_a_commit_point_then_forgets_the_partitions(tmp_path: Path) -> None:
    wire, runner, _, sink = wiring(tmp_path)
    runner.after_checkpoint.append(wire.save_positions)
    runner.positions["events"] = {0: 10, 1: 20}
    sink.write(runner.pipeline.process(make_decoder(runner.pipeline.settings).decode_json(b'{"id": "x", "a": 1}')))  # type: ignore[arg-type]
    wire.on_revoked([("events", 1)])
    assert len(sink.durable) == 1  # flushed before giving the partition up
    assert wire.store.load("events", [0, 1]) == {0: 10, 1: 20}
    assert runner.positions["events"] == {0: 10}


def test_readiness_needs_partitions_and_a_fresh_checkpoint(tmp_path: Path) -> None:
    wire, runner, events, _ = wiring(tmp_path)
    assert wire.ready()[0] is False
    events.parts = [("events", 0)]
    assert wire.ready()[0] is True
    runner.last_commit = 1.0  # long ago
    assert wire.ready() == (False, wire.ready()[1]) and "checkpoint" in wire.ready()[1]
    runner.last_turn = 1.0
    assert wire.live()[0] is False
    runner.last_commit = 0.0
    wire.outage.down("test")
    assert wire.ready()[0] is False and "unreachable" in wire.ready()[1]


def test_secrets_are_never_shown() -> None:
    settings = load_settings(None, kafka={"sasl_password": "hunter2", "ssl_password": "s3cret"})
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert "hunter2" not in text and "s3cret" not in text
    from connectors.kafka import client_config

    assert client_config(settings.kafka)["ssl_password"] == "s3cret"  # revealed only to the client
