"""The loop: poll -> decode -> score/learn -> write; a commit point when due and at the end.

One thread. The order at a commit point is ``sink.flush -> checkpoint.save -> source.commit``; an
exception anywhere stops the loop *without* a commit point, so a restart resumes from the last
checkpoint: events after it are scored again (outputs are at-least-once, or exactly-once for file
sinks, which are cut back), and never learned twice.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.checkpoint import Checkpointer
from stream.events import BadRecord, Decoder, Event, EventBlock, Label, Record, positions_after
from stream.metrics import ServiceMetrics
from stream.pipeline import Pipeline, head_with_events
from stream.protocols import DeadLetters, Offsets, Sink, Source

log = logging.getLogger(__name__)

BATCH = 512
HELD_LABELS = 8 * BATCH  # labels read ahead of their events' time, at most (then the source waits)


class StopSignal(Protocol):
    def is_set(self) -> bool: ...
PUBLISH_EVERY_SECONDS = 1.0


@dataclass
class CommitPolicy:
    """A commit point every ``events`` events or ``seconds`` seconds, whichever comes first."""

    events: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _count: int = 0
    _since: float = field(default_factory=time.monotonic)

    def add(self, n: int) -> None:
        self._count += n

    def due(self) -> bool:
        return self._count >= self.events or self.clock() - self._since >= self.seconds

    def reset(self) -> None:
        self._count, self._since = 0, self.clock()


@dataclass
class Ports:
    """The I/O of one run; everything else is the pipeline."""

    source: Source
    sink: Sink
    dead_letters: DeadLetters
    labels: Source | None = None


class Pacer:
    """Replays at ``speed`` x event time (None: as fast as possible)."""

    def __init__(self, speed: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.speed, self.clock = speed, clock
        self.origin: tuple[float, float] | None = None  # (event ts, wall time) of the first event

    def wait(self, ts: float | None) -> None:
        if self.speed is None or ts is None:
            return
        if self.origin is None:
            self.origin = (ts, self.clock())
            return
        due = self.origin[1] + (ts - self.origin[0]) / self.speed
        delay = due - self.clock()
        if delay > 0:
            time.sleep(min(delay, 1.0))


class Runner:
    """Drives records through the pipeline and keeps the positions a checkpoint needs."""

    def __init__(
        self,
        pipeline: Pipeline,
        decoder: Decoder,
        ports: Ports,
        checkpointer: Checkpointer | None,
        policy: CommitPolicy,
        metrics: ServiceMetrics | None = None,
        pacer: Pacer | None = None,
        positions: dict[str, Offsets] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.decoder = decoder
        self.ports = ports
        self.checkpointer = checkpointer
        self.policy = policy
        self.metrics = metrics
        self.pacer = pacer or Pacer(None)
        self.positions: dict[str, Offsets] = positions or {"events": {}, "labels": {}}
        self.gate = LabelGate(self, ports.labels) if ports.labels is not None else None
        self.on_batch: Callable[[Runner], None] | None = None
        # Run after each checkpoint, before the sources commit (shared positions, test logs).
        self.after_checkpoint: list[Callable[[Runner], None]] = []
        self.last_commit = 0.0
        self.last_turn = 0.0
        self._published = 0.0

    def run(self, stop: StopSignal) -> None:
        """Until the source is exhausted or ``stop`` is set; ends with a commit point."""
        source = self.ports.source
        while not stop.is_set():
            batch = source.poll(BATCH)
            if not batch and source.exhausted:
                break
            started = time.perf_counter()
            self.handle_many(batch)
            self.positions["events"].update(positions_after(batch))
            if self.gate is not None:
                self.gate.release()  # labels keep flowing while events idle
            self._after_batch(len(batch), started)
        if source.exhausted and not stop.is_set():
            self.pipeline.end_micro_batch()  # the input is over: learn what its last events taught
            if self.gate is not None:
                self.gate.release(final=True)
        self.commit_point()

    def handle_many(self, records: Sequence[Record]) -> None:
        """Decode the records, score the events and learn the labels in order; bad ones go to the dead letters.

        The pipeline takes them a micro-batch at a time; with pacing, one event at a time. A poll of
        plain events (label-only records among them too) goes as a block (no object per event) as
        far as the pipeline takes it.
        """
        if self.pacer.speed is None:
            block = self.decoder.decode_block(records)
            if block is not None:
                records = records[self._process_block(records, block) :]
        run: list[tuple[Record, Event | Label | BadRecord]] = []
        # A bad record is dead-lettered in its place among the run's outputs.
        for record, message in zip(records, self.decoder.decode_many(records)):
            if self.pacer.speed is not None and isinstance(message, Event):
                self._process(run)
                run = []
                self.pacer.wait(message.ts)
            run.append((record, message))
        self._process(run)

    def _process(self, run: list[tuple[Record, Event | Label | BadRecord]]) -> None:
        while run:
            # Up to the end of the pipeline's micro-batch, so labels due by then are learned at its end
            # however the input was polled.
            part, rest = head_with_events(run, self.pipeline.room, lambda item: isinstance(item[1], Event))
            run = list(rest)
            messages = [message for _, message in part if not isinstance(message, BadRecord)]
            results = iter(self.pipeline.process_part(messages))
            for record, message in part:
                result = message if isinstance(message, BadRecord) else next(results)
                if isinstance(result, BadRecord):
                    self.dead_letter(record, result)
                elif result is not None:
                    self.ports.sink.write(result)
                    if self.gate is not None:
                        self.gate.saw_event(record.partition, result.ts)
            if self.gate is not None:
                self.gate.release()

    def _process_block(self, records: Sequence[Record], block: EventBlock) -> int:
        """``_process`` of a block's events (and the poll's labels among them) a micro-batch at a
        time; returns how many records the pipeline took (the rest take the general path). A part
        ends at its micro-batch's last event, so labels after it go with the next part (first), as
        ``head_with_events`` cuts them."""
        at = block.at if block.at is not None else range(len(block))
        labels = block.labels
        done = taken = next_label = 0  # events, records and labels taken
        while done < len(block):
            end = min(len(block), done + self.pipeline.room)
            last = at[end - 1]  # the part's last event's record
            part_labels = []
            while next_label < len(labels) and labels[next_label][0] < last:
                record, label = labels[next_label]
                part_labels.append((bisect.bisect(at, record, done, end) - done, label))
                next_label += 1
            outcome = self.pipeline.process_block(block.part(done, end), part_labels)
            if outcome is None:
                break
            results, label_results = outcome
            self.ports.sink.write_many(results)
            for (record, _), bad in zip(labels[next_label - len(part_labels) : next_label], label_results):
                if bad is not None:
                    self.dead_letter(records[record], bad)
            if self.gate is not None:
                for k, ts in zip(at[done:end], results.ts):
                    self.gate.saw_event(records[k].partition, ts)
                self.gate.release()
            done, taken = end, last + 1
        return taken

    def dead_letter(self, record: Record, bad: BadRecord) -> None:
        self.pipeline.dead_letter(bad.reason)
        self.ports.dead_letters.write(record, bad.reason, bad.detail)

    def _after_batch(self, n: int, started: float) -> None:
        self.last_turn = time.time()
        self.policy.add(n)
        if self.metrics is not None:
            if n:
                self.metrics.batch_seconds.observe(time.perf_counter() - started)
            self.metrics.heartbeat.set_to_current_time()
            if time.monotonic() - self._published >= PUBLISH_EVERY_SECONDS:
                self.publish()
        if self.on_batch is not None:
            self.on_batch(self)
        if self.policy.due():
            self.commit_point()

    def publish(self) -> None:
        if self.metrics is not None:
            snapshot = self.pipeline.snapshot()
            if self.checkpointer is not None:
                snapshot["checkpoints_corrupt"] = self.checkpointer.corrupt_total
            lag = getattr(self.ports.source, "lag", None)
            if lag is not None:
                snapshot["lag"] = lag()
                snapshot["fetch_stalls"] = getattr(self.ports.source, "fetch_stalls", 0)
            self.metrics.publish(snapshot, self.pipeline.latency)
            self._published = time.monotonic()

    def commit_point(self, tell_sources: bool = True, publish: bool = True) -> None:
        """Flush outputs, save state with positions, then (``tell_sources``) commit to the sources;
        then (``publish``) publish the metrics."""
        started = time.perf_counter()
        self.ports.sink.flush()
        self.ports.dead_letters.flush()
        if self.checkpointer is not None:
            self.checkpointer.save(self.state())
        for hook in self.after_checkpoint:
            hook(self)
        self.last_commit = time.time()
        if tell_sources:
            self.ports.source.commit(self.positions["events"])
            if self.ports.labels is not None:
                self.ports.labels.commit(self.positions["labels"])
        self.policy.reset()
        if self.metrics is not None:
            self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
            self.metrics.checkpoint_time.set_to_current_time()
            if publish:
                self.publish()

    def forget(self, name: str, partitions: list[int]) -> None:
        """Drop positions of partitions this process no longer owns (after a rebalance)."""
        for partition in partitions:
            self.positions[name].pop(partition, None)

    def state(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "positions": {k: dict(v) for k, v in self.positions.items()},
            "outputs": {"scores": self.ports.sink.position(), "dead_letters": self.ports.dead_letters.position()},
        }


class LabelGate:
    """Releases a separate label stream in event time, per partition.

    A label with ``ts`` waits until the events of *its* partition (labels are co-partitioned with
    events by id) have reached that time: a label cannot join an event not yet seen. One without
    ``ts`` is released at once. The labels position only moves past released records, so a held
    label is read again after a restart.
    """

    def __init__(self, runner: Runner, source: Source) -> None:
        self.runner = runner
        self.source = source
        self.queues: dict[int, deque[tuple[Record, Label | None]]] = {}
        self.event_time: dict[int, float] = {}

    def saw_event(self, partition: int, ts: float) -> None:
        self.event_time[partition] = max(ts, self.event_time.get(partition, ts))

    def release(self, final: bool = False) -> None:
        """Learn every label that is due (``final``: all that are left, the events being over)."""
        while True:
            self._drain(final)
            # Read on while few labels wait, so one partition's early label cannot stall the others.
            if sum(map(len, self.queues.values())) >= HELD_LABELS or not self._refill():
                return

    def _drain(self, final: bool) -> None:
        for partition, queue in self.queues.items():
            now = None if final else self.event_time.get(partition)
            while queue:
                record, label = queue[0]
                if label is not None and label.ts is not None and not final and (now is None or label.ts > now):
                    break
                queue.popleft()
                if label is not None:
                    try:
                        self.runner.pipeline.learn_label(label)
                    except BadRecord as bad:
                        self.runner.dead_letter(record, bad)
                self.runner.positions["labels"][record.partition] = record.next_offset

    def _refill(self) -> bool:
        records = self.source.poll(BATCH)
        for record in records:
            queue = self.queues.setdefault(record.partition, deque())
            try:
                message = self.runner.decoder.decode(record)
                if not isinstance(message, Label):
                    raise BadRecord("bad_label", "record in the labels input is not a label-only record")
                queue.append((record, message))
            except BadRecord as bad:
                self.runner.dead_letter(record, bad)
                queue.append((record, None))
        return bool(records)
