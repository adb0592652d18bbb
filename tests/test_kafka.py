"""KafkaOutputs' delivery rules with a fake producer: outages are waited out, refusals are bounded."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from kafka.future import Future

from connectors.kafka import KafkaOutputs, SinkError
from stream.config import load_settings


class FakeProducer:
    """Futures stay pending until ``flush``; then they succeed (up), expire (down) or are refused."""

    def __init__(self) -> None:
        self.state = "up"
        self.pending: list[tuple[bytes, Future]] = []
        self.delivered: list[bytes] = []
        self.sends = 0

    def send(self, topic: str, value: bytes, key: bytes | None, headers: Any) -> Future:
        self.sends += 1
        future = Future()
        self.pending.append((value, future))
        return future

    def flush(self, timeout: float | None = None) -> None:
        pending, self.pending = self.pending, []
        for value, future in pending:
            if self.state == "up":
                self.delivered.append(value)
                future.success(None)
            elif self.state == "down":
                future.failure(KafkaTimeoutError("expired in the accumulator"))
            else:
                future.failure(TopicAuthorizationFailedError())
        if self.state == "down":
            raise KafkaTimeoutError("flush timed out")


def outputs(monkeypatch: pytest.MonkeyPatch, producer: FakeProducer, **kafka: Any) -> KafkaOutputs:
    monkeypatch.setattr("connectors.kafka.time.sleep", lambda _: None)
    out = KafkaOutputs(load_settings(None, kafka=kafka).kafka, producer)
    out.reachable = lambda: producer.state != "down"
    return out


def test_an_outage_is_waited_out_reported_and_expired_messages_sent_again(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    out = outputs(monkeypatch, producer)
    changes: list[bool] = []
    out.outage.on_change = changes.append
    for i in range(5):
        out.send("scores", b"m%d" % i, None, [])
    producer.state = "down"
    waits = 0

    def keep_waiting() -> bool:
        nonlocal waits
        waits += 1
        if waits == 4:
            producer.state = "up"  # the broker is back
        return True

    out.keep_waiting = keep_waiting
    out.flush()
    assert sorted(producer.delivered) == [b"m%d" % i for i in range(5)]  # nothing lost
    assert changes == [True, False] and out.outage.count == 1 and out.outage.since is None
    assert out.held == []


def test_a_reachable_broker_that_refuses_gets_bounded_attempts_then_sink_error(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    out = outputs(monkeypatch, producer, delivery_attempts=3)
    out.send("scores", b"x", None, [])
    producer.state = "refuse"
    with pytest.raises(SinkError, match=r"refused 3 times \(kafka.delivery_attempts\)"):
        out.flush()
    assert producer.sends == 3 and out.outage.count == 0


def test_a_stop_during_an_outage_ends_the_wait_without_success(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    out = outputs(monkeypatch, producer)
    out.send("scores", b"x", None, [])
    producer.state = "down"
    out.keep_waiting = lambda: False
    with pytest.raises(SinkError, match="stopped during a broker outage"):
        out.flush()
    assert out.held  # still held: the commit point did not happen


def test_an_outage_is_reported_even_with_nothing_to_deliver(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    out = outputs(monkeypatch, producer)
    producer.state = "down"
    out.flush()
    assert out.outage.since is not None
    producer.state = "up"
    out.flush()
    assert out.outage.since is None and out.outage.count == 1


def test_the_gil_wait_warning_of_kafka_pythons_io_thread_is_dropped_and_others_kept(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from connectors.kafka import quiet_gil_wait_warnings

    selector = logging.getLogger("kafka.net.selector")
    quiet_gil_wait_warnings()
    with caplog.at_level(logging.WARNING, logger="kafka.net.selector"):
        selector.warning("Task <Task at 0x7f> ran for 0.155s (>0.100s threshold). It is blocking the event loop -- likely ...")
        selector.warning("Task %s left RUNNING after step; demoting to UNSCHEDULED", "t")
    assert [r.getMessage() for r in caplog.records] == ["Task t left RUNNING after step; demoting to UNSCHEDULED"]
