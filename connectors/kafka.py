"""Kafka as a source and a sink, behind our own typed adapter (kafka-python is untyped).

One consumer in the group reads the events topic and the labels topic (co-partitioned by event id:
the range assignor gives one process the same partitions of both). Auto-commit is off: the loop
commits after each checkpoint, and only for lag monitoring — on assignment the consumer seeks to
the checkpoint positions it is handed. Producers send with ``acks=all`` and retries; every message
is held until acknowledged. At a commit point, an unreachable broker is an *outage*: logged, counted
and waited out (held messages re-sent once it is back; none sent meanwhile); while the loop is held
inside the client, :class:`OutageWatch` probes and reports it instead. A reachable broker that refuses messages gets
``kafka.delivery_attempts`` rounds with backoff, then :class:`SinkError` stops the loop without
committing.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from stream.config import KafkaSettings
from stream.events import Record, Scored, encode_scored
from stream.protocols import ConnectError, DeliveryError, Offsets

log = logging.getLogger(__name__)

Partitions = list[tuple[str, int]]


class SinkError(DeliveryError):
    """Produced messages could not be delivered; nothing after the last checkpoint is committed."""


# Overridable in ``kafka.producer``. Scores are small: large batches and a short linger cut the
# producer's per-batch work (each new batch wakes its sender thread), the cost of a score's latency.
PRODUCER_DEFAULTS: dict[str, Any] = {"linger_ms": 20, "batch_size": 256 * 1024}
CONSUMER_DEFAULTS: dict[str, Any] = {"auto_offset_reset": "earliest"}

# Committing group offsets only feeds lag monitoring (positions live in the checkpoint): never
# let it hold the loop for long.
COMMIT_TIMEOUT_MS = 5_000
# A partition with records beyond its position that the client itself holds unfetchable (not paused
# by us) for this long is stuck. Seen with kafka-python 3.0.12 under load: a rejoin whose revocation
# ran (which gates the partitions' fetching until the new assignment) but whose JoinGroup result was
# never applied, so the group looked stable while the gate stayed shut; polls were empty and the lag
# stood for good. (A slow loop or a broker outage also leaves partitions without records for a while,
# but fetchable: not this.)
FETCH_STALL_SECONDS = 15.0


def reachable(bootstrap_servers: str, timeout: float = 1.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection: tells an outage from a refusal."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


class Outage:
    """The broker being unreachable: logged when it starts and ends, counted, shown in health.

    Told by the loop's commit points and by :class:`OutageWatch` (its own thread): a lock keeps each
    start and end reported once.
    """

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.since: float | None = None
        self.count = 0
        self.on_change: Callable[[bool], None] | None = None  # metrics: True while unreachable
        self._lock = threading.Lock()

    def down(self, detail: str) -> None:
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
            self.count += 1
            log.warning("kafka: broker unreachable at %s (%s); waiting, nothing committed meanwhile", self.bootstrap_servers, detail)
            if self.on_change is not None:
                self.on_change(True)

    def up(self) -> None:
        with self._lock:
            if self.since is None:
                return
            log.warning("kafka: broker back after %.1fs; catching up", time.monotonic() - self.since)
            self.since = None
            if self.on_change is not None:
                self.on_change(False)


class OutageWatch:
    """Probes the broker from its own thread while the loop has not turned for ``held_seconds`` (or
    an outage is on), so an outage is reported even while the loop is held inside the client and
    never reaches a commit point. A loop that turns needs no probe: its commit points tell."""

    def __init__(
        self, outage: Outage, reachable: Callable[[], bool], last_turn: Callable[[], float],
        held_seconds: float = 2.0, every: float = 1.0,
    ) -> None:  # fmt: skip
        self.outage = outage
        self.reachable = reachable
        self.last_turn = last_turn  # time.time() of the loop's last turn
        self.held_seconds = held_seconds
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skewstream-outage-watch", daemon=True)

    def start(self) -> OutageWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def check(self) -> None:
        """One look: probe only when the loop is held or an outage is on."""
        if self.outage.since is None and time.time() - self.last_turn() < self.held_seconds:
            return
        if self.reachable():
            self.outage.up()
        else:
            self.outage.down("seen while the loop waits inside the Kafka client")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - a probe must never end the watch
                log.exception("kafka: outage watch failed a check")


class _GilWaitFilter(logging.Filter):
    """Drops kafka-python's "Task ... ran for 0.1s ... blocking the event loop" warning.

    kafka-python 3 times each step of its IO thread and warns past 0.1 s. Beside a scoring loop that
    keeps the GIL busy, every step waits for the GIL that long: a warning per second that says
    nothing about the client (delivery and lag have their own metrics and log lines).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # kafka-python formats it before logging
        return not (message.startswith("Task ") and "blocking the event loop" in message)


_GIL_WAIT_FILTER = _GilWaitFilter()


def quiet_gil_wait_warnings() -> None:
    """Install :class:`_GilWaitFilter` (idempotent: always the same filter object)."""
    logging.getLogger("kafka.net.selector").addFilter(_GIL_WAIT_FILTER)


def _connect(what: str, k: KafkaSettings, make: Callable[[], Any]) -> Any:
    quiet_gil_wait_warnings()
    # Our own quick check first: kafka-python would retry its bootstrap for 30 s before failing.
    if not reachable(k.bootstrap_servers, timeout=3.0):
        raise ConnectError(
            f"kafka.bootstrap_servers: no broker accepts connections at {k.bootstrap_servers}; "
            "check the address and that Kafka is running"
        )
    try:
        return make()
    except KafkaError as exc:
        raise ConnectError(f"kafka.bootstrap_servers: {what} cannot connect to {k.bootstrap_servers}: {exc!r}") from None


def client_config(k: KafkaSettings) -> dict[str, Any]:
    """Connection and security settings shared by consumers, producers and admin clients."""
    config: dict[str, Any] = {"bootstrap_servers": k.bootstrap_servers.split(","), "security_protocol": k.security_protocol}
    if k.sasl_mechanism:
        config["sasl_mechanism"] = k.sasl_mechanism
        config["sasl_plain_username"] = k.sasl_username
        if k.sasl_password is not None:
            config["sasl_plain_password"] = k.sasl_password.get_secret_value()
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(k, name)
        if value is not None:
            config[name] = str(value)
    if k.ssl_password is not None:
        config["ssl_password"] = k.ssl_password.get_secret_value()
    return config


def _record(msg: Any) -> Record:
    origin = f"{msg.topic}/{msg.partition}/{msg.offset}"
    return Record(msg.value if msg.value is not None else b"", origin, msg.partition, msg.offset + 1)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: KafkaEvents) -> None:
        self.owner = owner

    # kafka-python logs and swallows a listener's exception: keep it, and poll() raises it.
    def on_partitions_revoked(self, revoked: Any) -> None:
        parts = [(tp.topic, tp.partition) for tp in revoked]
        if parts and self.owner.on_revoked is not None:
            self._guard(self.owner.on_revoked, parts)

    def on_partitions_assigned(self, assigned: Any) -> None:
        parts = [(tp.topic, tp.partition) for tp in assigned]
        if self.owner.on_assigned is not None:
            self._guard(self.owner.on_assigned, parts)

    def _guard(self, callback: Callable[[Partitions], None], parts: Partitions) -> None:
        try:
            with self.owner.loop_turn:  # not while the loop is midway through a batch (see KafkaEvents)
                callback(parts)
        except Exception as exc:
            self.owner.callback_error = exc
            raise


class KafkaEvents:
    """The events topic as a live :class:`~stream.protocols.Source`; ``labels`` is the labels view."""

    def __init__(self, k: KafkaSettings, consumer: Any | None = None) -> None:
        self.k = k
        fixed = {"group_id": k.group_id, "enable_auto_commit": False, "partition_assignment_strategy": [RangePartitionAssignor]}
        self.consumer = consumer or _connect(
            "consumer", k, lambda: KafkaConsumer(**{**CONSUMER_DEFAULTS, **k.consumer, **client_config(k), **fixed})
        )
        self.on_revoked: Callable[[Partitions], None] | None = None
        self.on_assigned: Callable[[Partitions], None] | None = None
        self.callback_error: Exception | None = None
        # kafka-python 3 runs rebalance callbacks on its IO thread, and a join that outlives one poll
        # completes there while the loop goes on. The loop's thread holds this lock except while it
        # waits inside kafka-python, so a callback (which saves or moves the runner's state) runs only
        # between batches, never against a half-processed one. Only calls that may wait on the IO
        # thread release it; a callback must not make those (kafka-python refuses them there).
        self.loop_turn = threading.Lock()
        self.loop_turn.acquire()
        self.starved_since: dict[Any, float] = {}
        self.fetch_stalls = 0
        self.labels = KafkaLabels(self) if k.labels_topic else None
        topics = [k.events_topic] + ([k.labels_topic] if k.labels_topic else [])
        self._check_topics()
        self.consumer.subscribe(topics, listener=_Listener(self))

    def _check_topics(self) -> None:
        try:
            existing = self.consumer.topics()
        except KafkaError as exc:
            self.consumer.close()
            raise ConnectError(f"kafka.bootstrap_servers: cannot list topics on {self.k.bootstrap_servers}: {exc!r}") from None
        for key in ("events_topic", "labels_topic", "scores_topic", "dead_letters_topic"):
            topic = getattr(self.k, key)
            if topic and topic not in existing:
                self.consumer.close()
                raise ConnectError(
                    f"kafka.{key}: topic '{topic}' does not exist on {self.k.bootstrap_servers}; "
                    "create it (topics are not auto-created) or fix the name"
                )

    @property
    def exhausted(self) -> bool:
        return False

    @contextmanager
    def _inside_kafka(self) -> Iterator[None]:
        self.loop_turn.release()
        try:
            yield
        finally:
            self.loop_turn.acquire()

    def poll(self, max_records: int) -> list[Record]:
        with self._inside_kafka():
            batches = self.consumer.poll(timeout_ms=self.k.poll_timeout_ms, max_records=max_records)
        if self.callback_error is not None:
            raise self.callback_error
        self._watch_fetching(set(batches))
        events: list[Record] = []
        for tp in sorted(batches, key=lambda t: (t.topic, t.partition)):
            records = [_record(msg) for msg in batches[tp]]
            if tp.topic == self.k.events_topic:
                events.extend(records)
            elif self.labels is not None:
                self.labels.queue.extend(records)
        if self.labels is not None:
            self.labels.apply_backpressure()
        return events

    def _watch_fetching(self, fed: set[Any], now: float | None = None) -> None:
        """Re-arm a stuck partition: open a revocation gate a finished rebalance left shut, and seek it
        to its own position (which drops the client's fetch state for it)."""
        now = time.monotonic() if now is None else now
        # The client's own partition states (position() may start requests; this only reads); a
        # kafka-python without them gets no watchdog rather than a failing poll.
        states = getattr(getattr(self.consumer, "_subscription", None), "assignment", None)
        if not isinstance(states, dict):
            return
        for tp in self.consumer.assignment():
            state: Any = states.get(tp)
            high = self.consumer.highwater(tp)
            fetchable = getattr(state, "is_fetchable", None)
            stuck = (
                tp not in fed and state is not None and not state.paused and state.position is not None
                and callable(fetchable) and not fetchable() and high is not None and high > state.position.offset
            )  # fmt: skip
            if not stuck:
                self.starved_since.pop(tp, None)
                continue
            since = self.starved_since.setdefault(tp, now)
            if now - since >= FETCH_STALL_SECONDS:
                log.warning(
                    "kafka: %s/%d has records up to %d but none came from %d for %.0fs; seeking it to %d again (%s)",
                    tp.topic, tp.partition, high, state.position.offset, now - since, state.position.offset, _fetch_state(self.consumer, tp),
                )  # fmt: skip
                if getattr(state, "_pending_revocation", False):
                    state.mark_pending_revocation(False)  # no revocation lasts this long: ours runs between batches
                self.consumer.seek(tp, state.position.offset)
                self.fetch_stalls += 1
                self.starved_since[tp] = now

    def seek(self, offsets: Offsets, topic: str | None = None) -> None:
        """Seek assigned partitions of ``topic`` (default: events) to these next offsets."""
        for partition, offset in offsets.items():
            self.consumer.seek(TopicPartition(topic or self.k.events_topic, partition), offset)

    def commit(self, offsets: Offsets, topic: str | None = None) -> None:
        owned = {tp.partition for tp in self.consumer.assignment() if tp.topic == (topic or self.k.events_topic)}
        commit = {
            TopicPartition(topic or self.k.events_topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in offsets.items()
            if p in owned
        }
        if not commit:
            return
        try:
            with self._inside_kafka():
                self.consumer.commit(commit, timeout_ms=COMMIT_TIMEOUT_MS)
        except KafkaError as exc:  # lag only: the next commit point tries again
            log.warning("kafka: group offsets not committed (lag shows stale until the next commit): %r", exc)

    def assignment(self) -> Partitions:
        return sorted((tp.topic, tp.partition) for tp in self.consumer.assignment())

    def lag(self) -> dict[str, int]:
        """Per ``topic/partition``: high watermark minus position (from the last fetch)."""
        lags: dict[str, int] = {}
        try:
            for tp in self.consumer.assignment():
                high = self.consumer.highwater(tp)
                if high is None:
                    continue
                with self._inside_kafka():
                    # No wait: without a timeout, position() waits for the broker as long as it takes
                    # whenever a partition's offset needs resolving or validating (an outage: forever).
                    position = self.consumer.position(tp, timeout_ms=0)
                if position is not None:
                    lags[f"{tp.topic}/{tp.partition}"] = max(0, high - position)
        except (KafkaError, RuntimeError):
            # position() may ask the broker: during an outage it fails, and on kafka-python's IO
            # thread it is refused with a RuntimeError (the revoke callback no longer publishes;
            # this stays the guard). Lag is then unknown for this publish, not fatal.
            return {}
        return lags

    def close(self) -> None:
        """Bounded; never raises (it runs while another error may be on its way out)."""
        try:
            with self._inside_kafka():
                self.consumer.close(autocommit=False, timeout_ms=int(self.k.close_timeout_seconds * 1000))
        except KafkaError as exc:
            log.warning("consumer did not close cleanly: %r", exc)


def _fetch_state(consumer: Any, tp: Any) -> str:
    """What kafka-python holds about a partition's fetching (private fields: a diagnosis, never fatal)."""
    try:
        state = {k: v for k, v in vars(consumer._subscription.assignment[tp]).items() if k != "highwater"}
        fetcher = consumer._fetcher
        futures = [("done" if f.is_done else "pending") for f in fetcher._fetch_futures]
        pending_nodes = sorted(fetcher._nodes_with_pending_fetch_requests)
        return f"partition {state}; fetches {futures}; nodes with a pending fetch {pending_nodes}; buffered {len(fetcher._completed_fetches)}"
    except Exception as exc:  # noqa: BLE001 - the warning must not fail on a client's internals
        return f"client state unreadable: {exc!r}"


class KafkaLabels:
    """The labels topic's records, fetched by the events consumer, as a source for the label gate."""

    def __init__(self, events: KafkaEvents) -> None:
        self.events = events
        self.queue: deque[Record] = deque()
        self.paused = False

    @property
    def exhausted(self) -> bool:
        return False

    def poll(self, max_records: int) -> list[Record]:
        out = [self.queue.popleft() for _ in range(min(max_records, len(self.queue)))]
        self.apply_backpressure()
        return out

    def apply_backpressure(self) -> None:
        """Pause the labels topic while too many labels wait for their events (bounded memory)."""
        full = len(self.queue) >= self.events.k.max_held_labels
        if full == self.paused:  # called per event: nothing to do unless the state changes
            return
        consumer, topic = self.events.consumer, self.events.k.labels_topic
        parts = [tp for tp in consumer.assignment() if tp.topic == topic]
        if full and not self.paused:
            consumer.pause(*parts)
        elif not full and self.paused:
            consumer.resume(*parts)
        self.paused = full

    def seek(self, offsets: Offsets) -> None:
        self.events.seek(offsets, self.events.k.labels_topic)

    def commit(self, offsets: Offsets) -> None:
        self.events.commit(offsets, self.events.k.labels_topic)

    def close(self) -> None:
        pass


@dataclass
class _Held:
    """A produced message kept until the broker acknowledges it (``future`` None: not yet sent)."""

    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    future: Any | None = None

    @property
    def failed(self) -> bool:
        return self.future is None or bool(self.future.failed())

    @property
    def settled(self) -> bool:
        return self.future is not None and bool(self.future.is_done)


class KafkaOutputs:
    """One producer for the scores and dead-letter topics; delivery is settled at ``flush``.

    Messages since the last flush are held (bounded by the commit interval) so that what expired
    in the producer during an outage is sent again, not lost.
    """

    def __init__(self, k: KafkaSettings, producer: Any | None = None) -> None:
        self.k = k
        self.producer = producer or _connect(
            "producer", k, lambda: KafkaProducer(**{**PRODUCER_DEFAULTS, **k.producer, **client_config(k), "acks": "all"})
        )
        self.held: list[_Held] = []
        self.sent = 0
        self.outage = Outage(k.bootstrap_servers)
        self.keep_waiting: Callable[[], bool] = lambda: True  # serve: heartbeat, and False once stopping
        self.reachable: Callable[[], bool] = lambda: reachable(k.bootstrap_servers)
        self.scores = _Scores(self)
        self.dead_letters = _DeadLetters(self)

    def send(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        message = _Held(topic, value, key, headers)
        self.held.append(message)
        if self.outage.since is None:  # in an outage a send may block for max_block_ms: the flush sends it once the broker is back
            self._send(message)
        self.sent += 1

    def _send(self, message: _Held) -> None:
        try:
            message.future = self.producer.send(message.topic, value=message.value, key=message.key, headers=message.headers)
        except KafkaTimeoutError as exc:  # no metadata / buffer full for max_block_ms
            if self.reachable():
                raise SinkError(f"kafka: cannot send to topic '{message.topic}': {exc}") from None
            message.future = None  # sent again at the flush, once the broker is back
            self.outage.down("a send timed out")
        except KafkaError as exc:
            raise SinkError(f"kafka: cannot send to topic '{message.topic}': {exc}") from None

    def flush(self) -> None:
        """Return once every held message is acknowledged; wait out an outage; else SinkError."""
        if not self.held:
            self._watch()  # even with nothing to deliver, an outage is seen and reported
            return
        attempts, backoff = 0, 0.5
        deadline = time.monotonic() + self.k.flush_timeout_seconds
        while True:
            try:
                self.producer.flush(timeout=1.0)
            except KafkaTimeoutError:
                pass
            failed = [m for m in self.held if m.failed]
            if not failed and all(m.settled for m in self.held):
                self.held.clear()
                self.outage.up()
                return
            stopping = not self.keep_waiting()
            if not self._watch():
                if stopping:  # an outage could last forever: a stop ends the wait (a slow broker gets its flush)
                    raise SinkError("kafka: stopped during a broker outage; nothing committed since the last checkpoint")
                deadline = time.monotonic() + self.k.flush_timeout_seconds  # an outage is waited out
            elif failed:
                attempts += 1
                if attempts >= self.k.delivery_attempts:
                    raise SinkError(f"kafka: {len(failed)} messages refused {attempts} times (kafka.delivery_attempts), first: {_why(failed[0])}")
            elif time.monotonic() > deadline:
                raise SinkError("kafka: produced messages not acknowledged within kafka.flush_timeout_seconds")
            if failed:
                time.sleep(backoff)
                backoff = min(2 * backoff, 5.0)
                for message in failed:
                    self._send(message)

    def _watch(self) -> bool:
        """Whether the broker is reachable; reports an outage starting or ending."""
        if self.reachable():
            self.outage.up()
            return True
        self.outage.down(f"{len(self.held)} messages held")
        return False

    def close(self) -> None:
        """Bounded; never raises (it runs while another error may be on its way out)."""
        try:
            self.producer.close(timeout=self.k.close_timeout_seconds)
        except KafkaError as exc:
            log.warning("producer did not close cleanly within kafka.close_timeout_seconds: %r", exc)
            # kafka-python's close() flushes first and raises when that times out, leaving the
            # sender thread running: stop it the way close() itself would have.
            sender = getattr(self.producer, "_sender", None)
            if sender is not None and sender.is_alive():
                sender.force_close()


def _why(message: _Held) -> str:
    return repr(message.future.exception) if message.future is not None else "not sent"


class _Topic:
    """A view of the shared producer; flushing one flushes both topics (one producer)."""

    def __init__(self, outputs: KafkaOutputs) -> None:
        self.outputs = outputs

    def flush(self) -> None:
        self.outputs.flush()

    def position(self) -> int:
        return self.outputs.sent

    def close(self) -> None:
        pass  # the producer is closed once, by KafkaOutputs


class _Scores(_Topic):
    def write(self, scored: Scored) -> None:
        headers = [("model_version", str(scored.model_version).encode())]
        self.outputs.send(self.outputs.k.scores_topic, encode_scored(scored), scored.id.encode(), headers)

    def write_many(self, scored: Sequence[Scored]) -> None:
        for one in scored:
            self.write(one)


class _DeadLetters(_Topic):
    def write(self, record: Record, reason: str, detail: str) -> None:
        topic, partition, offset = (record.origin.split("/") + ["", "", ""])[:3]
        headers = [
            ("reason", reason.encode()),
            ("detail", detail.encode()[:1000]),
            ("source_topic", topic.encode()),
            ("source_partition", partition.encode()),
            ("source_offset", offset.encode()),
        ]
        self.outputs.send(self.outputs.k.dead_letters_topic, record.value, None, headers)
