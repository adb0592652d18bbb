"""``skewstream bench kafka``: what serving costs on top of reading the topic, in one run.

Produces N events (the synthetic 1%-positive stream, keyed by id) to a fresh topic, then measures
(1) raw kafka-python consumption of that topic and (2) ``serve`` end to end (consume, decode,
score, learn, produce scores, checkpoint) on the same topic, and prints both and their ratio.
The broker comes from ``kafka.bootstrap_servers`` (e.g. ``SKEWSTREAM_KAFKA__BOOTSTRAP_SERVERS``);
``python deploy/kafka/broker.py start`` runs a local one.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from connectors.kafka import quiet_gil_wait_warnings
from stream.config import Settings, load_settings
from stream.loop import Runner
from stream.synth import ABRUPT, event_record, generate


def _produce(bootstrap: list[str], topic: str, n: int, seed: int) -> None:
    quiet_gil_wait_warnings()
    stream = generate(replace(ABRUPT, n=n, seed=seed))
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    for i in range(n):
        record = event_record(stream, i)
        producer.send(topic, key=str(record["id"]).encode(), value=orjson.dumps(record))
    producer.flush()
    producer.close()


def _raw_consume(bootstrap: list[str], topic: str, n: int) -> float:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:6]}",
                             auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    seen, started = 0, None
    while seen < n:
        for batch in consumer.poll(timeout_ms=500, max_records=512).values():
            started = started or time.perf_counter()
            seen += len(batch)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return n / elapsed


def _serve(settings: Settings, n: int) -> float:
    from stream.service import serve

    stop = threading.Event()
    marks: dict[str, float] = {}

    def watch(runner: Runner) -> None:
        scored = runner.pipeline.counts["scored"]
        if scored and "start" not in marks:
            marks["start"] = time.perf_counter()
        if scored >= n:
            marks["end"] = time.perf_counter()
            stop.set()

    serve(settings, stop, on_batch=watch)
    return n / (marks["end"] - marks["start"])


def main(events: int, seed: int) -> int:
    base = load_settings(None)
    bootstrap = base.kafka.bootstrap_servers.split(",")
    tag = uuid.uuid4().hex[:6]
    topics = {name: f"bench-{name}-{tag}" for name in ("events", "scores", "dead")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(t, 3, 1) for t in topics.values()])
    admin.close()
    _produce(bootstrap, topics["events"], events, seed)
    raw = _raw_consume(bootstrap, topics["events"], events)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None,
            kafka={"events_topic": topics["events"], "labels_topic": None, "scores_topic": topics["scores"],
                   "dead_letters_topic": topics["dead"], "group_id": f"bench-{tag}"},
            checkpoint={"dir": Path(tmp)},
        )  # fmt: skip
        served = _serve(settings, events)
    print(f"{events:,} events on a 3-partition topic ({base.kafka.bootstrap_servers}), model {settings.model.kind}")
    print("| path | events/s | ratio |")
    print("|---|---|---|")
    print(f"| raw kafka-python consume | {raw:,.0f} | 1.00 |")
    print(f"| skewstream serve (consume, score, learn, produce, checkpoint) | {served:,.0f} | {served / raw:.3f} |")
    return 0
