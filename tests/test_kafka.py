"""KafkaOutputs' delivery rules with a fake producer: outages are waited out, refusals are bounded;
KafkaEvents runs rebalance callbacks only between batches."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from kafka.future import Future
from kafka.consumer.subscription_state import TopicPartitionState

from connectors.kafka import FETCH_STALL_SECONDS, KafkaEvents, KafkaOutputs, Outage, OutageWatch, SinkError
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


class FakeConsumer:
    """Runs the rebalance listener on its own thread, as kafka-python 3's IO thread does when a join
    completes after the poll that started it has returned."""

    def __init__(self) -> None:
        self.listener: Any = None
        self.io_thread: threading.Thread | None = None
        self._subscription = SimpleNamespace(assignment={})

    def assignment(self) -> set[TopicPartition]:
        return set(self._subscription.assignment)

    def topics(self) -> set[str]:
        return {"events", "labels", "scores", "dead-letters"}

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def join_completes_in_the_background(self) -> None:
        self.io_thread = threading.Thread(target=self.listener.on_partitions_assigned, args=([TopicPartition("events", 0)],))
        self.io_thread.start()

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        assert self.io_thread is not None
        self.io_thread.join(timeout=5.0)  # the loop waits inside kafka-python: the callback may run now
        return {}


def test_a_rebalance_callback_from_the_io_thread_waits_until_the_loop_is_back_inside_kafka() -> None:
    consumer = FakeConsumer()
    events = KafkaEvents(load_settings(None).kafka, consumer)
    seen: list[tuple[str, list[Any]]] = []
    events.on_assigned = lambda parts: seen.append((threading.current_thread().name, parts))
    consumer.join_completes_in_the_background()  # while the loop is midway through a batch
    time.sleep(0.3)
    assert seen == []  # it did not touch the runner's state under the batch
    assert events.poll(100) == []
    assert [parts for _, parts in seen] == [[("events", 0)]]
    assert seen[0][0] != threading.current_thread().name  # it ran on the other thread, while poll waited


class StarvingConsumer(FakeConsumer):
    """Four partitions with records beyond their positions; only those in ``fed`` yield any."""

    def __init__(self) -> None:
        super().__init__()
        self.parts = [TopicPartition("events", p) for p in range(4)]
        self._subscription = SimpleNamespace(assignment={tp: TopicPartitionState() for tp in self.parts})
        for state in self._subscription.assignment.values():
            state.seek(100)
        # kafka-python 3.0.12's stall: a rebalance gated fetching and never applied its assignment.
        self._subscription.assignment[self.parts[1]].mark_pending_revocation()
        self._subscription.assignment[self.parts[2]].pause()  # held back on purpose (label backpressure)
        # Partition 3 is fetchable but yields nothing (a slow loop, an outage): waiting, not stuck.
        self.sought: list[tuple[TopicPartition, int]] = []

    def highwater(self, tp: TopicPartition) -> int:
        return 500

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))


def test_a_partition_the_client_holds_unfetchable_for_long_is_re_armed_once_per_stall() -> None:
    consumer = StarvingConsumer()
    events = KafkaEvents(load_settings(None).kafka, consumer)
    fed = {consumer.parts[0]}
    for now in (0.0, 10.0, FETCH_STALL_SECONDS - 1):
        events._watch_fetching(fed, now)
    assert consumer.sought == [] and events.fetch_stalls == 0  # not yet starved for long enough
    events._watch_fetching(fed, FETCH_STALL_SECONDS)
    # Only partition 1: 0 yields records, 2 is paused, 3 is fetchable. Its gate is open again.
    assert consumer.sought == [(consumer.parts[1], 100)] and events.fetch_stalls == 1
    assert consumer._subscription.assignment[consumer.parts[1]].is_fetchable()
    events._watch_fetching({consumer.parts[1]}, FETCH_STALL_SECONDS + 2)  # it yields again
    consumer._subscription.assignment[consumer.parts[1]].mark_pending_revocation()  # the same bug, later
    events._watch_fetching(fed, FETCH_STALL_SECONDS + 3)
    events._watch_fetching(fed, 2 * FETCH_STALL_SECONDS + 2)
    assert events.fetch_stalls == 1  # a new stall's clock starts when it does
    events._watch_fetching(fed, 2 * FETCH_STALL_SECONDS + 3)
    assert events.fetch_stalls == 2 and consumer.sought[-1] == (consumer.parts[1], 100)
    assert consumer.parts[3] not in [tp for tp, _ in consumer.sought]  # fetchable: never touched


def test_an_outage_while_the_loop_is_held_inside_the_client_is_reported_by_the_watch() -> None:
    up = threading.Event()
    up.set()
    probes: list[bool] = []

    def reachable() -> bool:
        probes.append(up.is_set())
        return up.is_set()

    outage = Outage("127.0.0.1:9092")
    changes: list[bool] = []
    outage.on_change = changes.append
    last_turn = time.time()
    watch = OutageWatch(outage, reachable, lambda: last_turn, held_seconds=0.2, every=0.05)
    watch.check()
    assert probes == []  # a loop that turns is not probed: its commit points tell
    last_turn -= 1.0  # the loop is held (say, inside kafka-python's poll)
    up.clear()
    watch.start()
    try:
        deadline = time.monotonic() + 5.0
        while outage.since is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outage.since is not None and changes == [True] and outage.count == 1
        up.set()  # back while the loop is still held
        while outage.since is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outage.since is None and changes == [True, False]
    finally:
        watch.stop()


def test_a_send_during_an_outage_is_held_unsent_and_delivered_by_the_flush_once_the_broker_is_back(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    out = outputs(monkeypatch, producer)
    producer.state = "down"
    out.flush()  # the outage is seen
    out.send("scores", b"during", None, [])
    assert producer.sends == 0  # kafka-python could block on it for max_block_ms
    producer.state = "up"
    out.flush()
    assert producer.delivered == [b"during"] and out.held == [] and out.outage.since is None


class LagConsumer(FakeConsumer):
    """Knows a high watermark for two partitions, a position for one (the other's is unresolved)."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[int | None] = []
        self._subscription = SimpleNamespace(assignment={TopicPartition("events", 0): None, TopicPartition("events", 1): None})

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        self.timeouts.append(timeout_ms)
        return 40 if tp.partition == 0 else None


def test_lag_never_waits_for_the_broker_and_leaves_out_what_it_does_not_know() -> None:
    consumer = LagConsumer()
    events = KafkaEvents(load_settings(None).kafka, consumer)
    assert events.lag() == {"events/0": 60}
    assert consumer.timeouts == [0, 0]  # without a timeout, position() may wait on the broker forever
