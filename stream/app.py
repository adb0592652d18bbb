"""Composition root: settings and options -> objects -> the loop. Signals stop it cleanly."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import orjson
from prometheus_client import CollectorRegistry

from stream.checkpoint import Checkpointer, CheckpointError
from stream.config import Settings, checkpoint_key
from stream.events import Decoder
from stream.loop import BATCH, CommitPolicy, Pacer, Ports, Runner
from stream.metrics import ServiceMetrics
from stream.pipeline import Pipeline
from stream.protocols import Source


@dataclass(frozen=True)
class ReplayOptions:
    input: Path | None  # a file; None with kafka_topic
    labels: Path | None = None
    out: Path | None = None
    dead_letters: Path | None = None
    resume: bool = False
    speed: float | None = None  # None: as fast as possible
    metrics_port: int | None = None
    kafka_topic: str | None = None  # replay a window of this topic instead of a file
    from_offset: int | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None


@dataclass
class RunResult:
    pipeline: Pipeline
    seconds: float
    resumed: bool


def warm_up(settings: Settings) -> None:
    """Replay a small generated stream through a throwaway pipeline on the loop's own path
    (decoder, blocks, sinks), so that a run's first events do not pay for loading the compiled
    kernels (the first call of each loads it, or compiles it on a new machine: seconds).

    Long enough for the anomaly scorer's first window and the threshold's merges; then a part with
    delayed labels (label records among the events), whose first poll the compiled reader gives
    up on (a number with 17 digits): the general path and the label joins load theirs too."""
    from connectors.file import NullSink
    from connectors.memory import MemoryDeadLetters, MemorySource

    micro_batch, anomaly = settings.model.micro_batch, settings.anomaly
    # A seventh of the events are positives; the anomaly scorer learns every learn_every-th normal one.
    first_window = math.ceil(anomaly.window * anomaly.learn_every * 7 / 6)
    n = max(2 * micro_batch, min(first_window + 2 * micro_batch, 5_000))
    pipeline = Pipeline(settings)
    for values in (_warm_up_records(settings, n, delayed=False), _warm_up_records(settings, BATCH + 200, delayed=True)):
        ports = Ports(MemorySource(values), NullSink(), MemoryDeadLetters())
        Runner(pipeline, make_decoder(settings), ports, None, CommitPolicy(1 << 62, math.inf)).run(threading.Event())


def _warm_up_records(settings: Settings, n: int, delayed: bool) -> list[bytes]:
    """``n`` generated events (a seventh positive); ``delayed``: every third one's label comes in a
    label record four records later, and the first event has a 17-digit number."""
    s = settings.input
    names = s.features or ["a", "b"]
    rng = np.random.default_rng(int(delayed))
    tag = "late" if delayed else "warm-up"
    records, labels = [], {}
    for i in range(n):
        x = {name: round(float(v), 6) for name, v in zip(names, rng.normal(size=len(names)))}
        if delayed and i == 0:
            x[names[0]] = 0.1 + 0.2  # 0.30000000000000004
        y = int(i % 7 == 0)
        late = delayed and i % 3 == 0
        records.append(orjson.dumps({s.id_field: f"{tag}-{i}", s.ts_field: float(i), s.label_field: None if late else y, **x}))
        if late:
            labels[i + 4] = orjson.dumps({s.id_field: f"{tag}-{i}", s.label_field: y})
        if i in labels:
            records.append(labels.pop(i))
    return records


def make_decoder(settings: Settings) -> Decoder:
    s = settings.input
    return Decoder(s.id_field, s.ts_field, s.label_field, s.max_record_bytes, s.max_abs_value)


def restore(settings: Settings, resume: bool) -> tuple[Checkpointer | None, dict[str, Any] | None]:
    """The checkpointer (if configured) and, with ``resume``, the state to continue from."""
    directory = settings.checkpoint.dir
    if directory is None:
        if resume:
            raise CheckpointError("--resume needs checkpoint.dir (SKEWSTREAM_CHECKPOINT__DIR or --checkpoint-dir)")
        return None, None
    checkpointer = Checkpointer(directory, settings.checkpoint.keep, checkpoint_key(settings.checkpoint))
    return checkpointer, checkpointer.load_latest() if resume else None


def replay(
    settings: Settings,
    options: ReplayOptions,
    progress: Callable[[Runner], None] | None = None,
    stop: threading.Event | None = None,
    setup: Callable[[Runner], None] | None = None,
) -> RunResult:
    """Run a file through the pipeline; resumes from the last checkpoint with ``options.resume``."""
    from connectors.file import FileDeadLetters, FileSink, FileSource, NullSink

    checkpointer, state = restore(settings, options.resume)
    outputs = state["outputs"] if state else {}
    resumed = state is not None
    pipeline = state["pipeline"] if state else Pipeline(settings)
    metrics = make_metrics(settings, options.metrics_port)  # first: a busy port must not leave files open
    try:
        source = _replay_source(settings, options)
        labels = FileSource(options.labels, settings.input.max_record_bytes) if options.labels else None
        sink = FileSink(options.out, outputs.get("scores") if resumed else None) if options.out else NullSink()
        dead = FileDeadLetters(
            options.dead_letters or _beside(options.out or options.input or Path("replay"), "dead-letters.jsonl"),
            outputs.get("dead_letters") if resumed else None,
        )
    except BaseException:
        if metrics is not None:
            metrics.close()
        raise
    if state:
        source.seek(state["positions"]["events"])
        if labels is not None:
            labels.seek(state["positions"]["labels"])
    runner = Runner(
        pipeline, make_decoder(settings), Ports(source, sink, dead, labels), checkpointer,
        CommitPolicy(settings.checkpoint.every_events, settings.checkpoint.every_seconds),
        metrics, Pacer(options.speed), state["positions"] if state else None,
    )  # fmt: skip
    runner.on_batch = progress
    if setup is not None:
        setup(runner)
    warm_up(settings)  # not timed: loading the compiled kernels is start-up, not throughput
    started = time.perf_counter()
    try:
        with stop_on_signals(stop) as stopping:
            runner.run(stopping)
    finally:
        for port in (source, labels, sink, dead):
            if port is not None:
                port.close()
        if metrics is not None:
            metrics.close()
    return RunResult(pipeline, time.perf_counter() - started, resumed)


def _replay_source(settings: Settings, options: ReplayOptions) -> Source:
    if options.kafka_topic is not None:
        from connectors.kafka_range import KafkaRange

        return KafkaRange(settings.kafka, options.kafka_topic, options.from_offset, options.from_time, options.to_time)
    from connectors.file import FileSource

    if options.input is None:
        raise FileNotFoundError("replay: give an input file or --kafka-topic")
    return FileSource(options.input, settings.input.max_record_bytes)


def _beside(path: Path, name: str) -> Path:
    return Path(path).with_name(f"{Path(path).stem}.{name}")


def make_metrics(settings: Settings, port: int | None) -> ServiceMetrics | None:
    """The metrics (and health) endpoint when a port is set by the caller or ``metrics.port``."""
    port = port if port is not None else settings.metrics.port
    if port is None:
        return None
    metrics = ServiceMetrics(CollectorRegistry())
    try:
        metrics.serve(settings.metrics.host, port)
    except OSError as exc:
        raise OSError(f"metrics.port: cannot listen on {settings.metrics.host}:{port}: {exc.strerror}; choose a free port") from None
    return metrics


class StopFlag:
    """A stop request that a signal handler may set.

    A handler must not take a lock: ``threading.Event.set`` does, and a second signal arriving
    inside the first handler then deadlocks the process (seen with SIGTERM sent twice). Setting
    a plain attribute is atomic. ``also`` is a caller's event that stops the loop too.
    """

    def __init__(self, also: threading.Event | None = None) -> None:
        self.flag = False
        self.also = also

    def set(self) -> None:
        self.flag = True

    def is_set(self) -> bool:
        return self.flag or (self.also is not None and self.also.is_set())


@contextmanager
def stop_on_signals(also: threading.Event | None = None) -> Iterator[StopFlag]:
    """SIGTERM / SIGINT request a stop: the loop finishes its batch and ends with a commit point."""
    stop = StopFlag(also)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.flag = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
