"""``skewstream serve``: the same loop and pipeline as ``replay``, fed by a Kafka consumer group.

What differs from a replay is only the wiring here: where state and positions live, what happens
when partitions move, and health. Each process checkpoints its state under
``checkpoint.dir/state/<kafka.instance_id>``; after every checkpoint it writes the next offset of each
partition it owns to ``checkpoint.dir/positions`` (shared by the group). On assignment a partition is
sought to the furthest of this process's checkpoint position and the shared one; on revocation a
commit point runs before the partition is given up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from stream.app import RunResult, make_decoder, make_metrics, stop_on_signals, warm_up
from stream.checkpoint import Checkpointer, CheckpointError
from stream.config import Settings, checkpoint_key
from stream.loop import CommitPolicy, Ports, Runner, StopSignal
from stream.pipeline import Pipeline
from stream.positions import PositionStore

if TYPE_CHECKING:
    from connectors.kafka import Outage

log = logging.getLogger(__name__)

# Test hook: a file that receives "<event id> <label>" for every learning step, appended at commit
# points only, so it lists exactly what the checkpointed state has learned (resume tests count it).
LEARN_LOG_ENV = "SKEWSTREAM_TEST_LEARN_LOG"


class KafkaWiring:
    """Rebalance callbacks, shared positions and health checks around one :class:`Runner`."""

    def __init__(
        self, runner: Runner, events: object, outage: Outage, store: PositionStore, settings: Settings
    ) -> None:
        self.runner = runner
        self.events = events
        self.outage = outage
        self.store = store
        self.k = settings.kafka
        self.health = settings.health
        self.closing = False
        self.started = time.time()

    def name_of(self, topic: str) -> str:
        return "events" if topic == self.k.events_topic else "labels"

    def on_assigned(self, parts: list[tuple[str, int]]) -> None:
        for topic, partition in parts:
            name = self.name_of(topic)
            known = [self.runner.positions[name].get(partition), self.store.load(topic, [partition]).get(partition)]
            target = max((p for p in known if p is not None), default=None)
            if target is not None:
                self.events.seek({partition: target}, topic)  # type: ignore[attr-defined]
                self.runner.positions[name][partition] = target
        log.info("assigned %s", parts)

    def on_revoked(self, parts: list[tuple[str, int]]) -> None:
        if self.closing:
            return
        # Everything done on these partitions is saved before they go. kafka-python runs this on
        # its IO thread, where a blocking call to the broker is refused: the group offsets (only
        # for lag) wait for the next owner's commit, the shared positions carry the truth, and the
        # metrics (lag asks the consumer) wait for the loop's next publish.
        self.runner.commit_point(tell_sources=False, publish=False)
        for topic, partition in parts:
            self.runner.forget(self.name_of(topic), [partition])
        log.info("revoked %s", parts)

    def save_positions(self, runner: Runner) -> None:
        self.store.save(self.k.events_topic, runner.positions["events"])
        if self.k.labels_topic:
            self.store.save(self.k.labels_topic, runner.positions["labels"])

    def waiting_on_broker(self, stopping: StopSignal) -> bool:
        """Called while a commit point waits for the broker: alive (not hung), unless stopping."""
        self.runner.last_turn = time.time()
        if self.runner.metrics is not None:
            self.runner.metrics.heartbeat.set_to_current_time()
        return not stopping.is_set()

    def live(self) -> tuple[bool, str]:
        age = time.time() - (self.runner.last_turn or self.started)
        ok = age < self.health.heartbeat_max_age_seconds
        return ok, f"loop turned {age:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        assigned = self.events.assignment()  # type: ignore[attr-defined]
        age = time.time() - (self.runner.last_commit or self.started)
        outage = self.outage.since
        if outage is not None:
            return False, f"broker unreachable for {time.monotonic() - outage:.0f}s"
        if not assigned:
            return False, "no partitions assigned"
        if age > self.health.checkpoint_max_age_seconds:
            return False, f"last checkpoint {age:.0f}s ago"
        return True, f"{len(assigned)} partitions, checkpoint {age:.0f}s ago"


def _learn_log(runner: Runner, path: Path) -> None:
    pending: list[str] = []
    runner.pipeline.learn_hook = lambda event_id, y: pending.append(f"{event_id} {y}\n")

    def flush(_: Runner) -> None:
        with open(path, "a") as out:
            out.writelines(pending)
        pending.clear()

    runner.after_checkpoint.append(flush)


def serve(
    settings: Settings, stop: threading.Event | None = None, on_batch: Callable[[Runner], None] | None = None
) -> RunResult:
    """Consume, score, learn and publish until SIGTERM/SIGINT (or ``stop``); ends with a commit point."""
    from connectors.kafka import KafkaEvents, KafkaOutputs, OutageWatch

    root = settings.checkpoint.dir
    if root is None:
        raise CheckpointError("serve needs checkpoint.dir (SKEWSTREAM_CHECKPOINT__DIR or [checkpoint] dir)")
    key = checkpoint_key(settings.checkpoint)
    checkpointer = Checkpointer(root / "state" / settings.kafka.instance_id, settings.checkpoint.keep, key)
    state = checkpointer.load_latest()
    store = PositionStore(root / "positions")
    warm_up(settings)  # load the compiled kernels before joining the group, not on its first poll
    outputs = KafkaOutputs(settings.kafka)
    events = KafkaEvents(settings.kafka)
    runner = Runner(
        state["pipeline"] if state else Pipeline(settings), make_decoder(settings),
        Ports(events, outputs.scores, outputs.dead_letters, events.labels), checkpointer,
        CommitPolicy(settings.checkpoint.every_events, settings.checkpoint.every_seconds),
        make_metrics(settings, None), None, state["positions"] if state else None,
    )  # fmt: skip
    wiring = KafkaWiring(runner, events, outputs.outage, store, settings)
    events.on_assigned, events.on_revoked = wiring.on_assigned, wiring.on_revoked
    runner.after_checkpoint.append(wiring.save_positions)
    runner.on_batch = on_batch
    if os.environ.get(LEARN_LOG_ENV):
        _learn_log(runner, Path(os.environ[LEARN_LOG_ENV]))
    if runner.metrics is not None:
        runner.metrics.live, runner.metrics.ready = wiring.live, wiring.ready
        outputs.outage.on_change = runner.metrics.broker_reachability
    watch = OutageWatch(outputs.outage, outputs.reachable, lambda: runner.last_turn or wiring.started).start()
    started = time.perf_counter()
    try:
        with stop_on_signals(stop) as stopping:
            outputs.keep_waiting = lambda: wiring.waiting_on_broker(stopping)
            runner.run(stopping)
    finally:
        wiring.closing = True
        watch.stop()
        events.close()
        outputs.close()
        if runner.metrics is not None:
            runner.metrics.close()
    return RunResult(runner.pipeline, time.perf_counter() - started, state is not None)
