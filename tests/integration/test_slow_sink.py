"""A slow scores topic (a produce quota on the broker): the service slows down with it instead of
queueing — scored events never run ahead of delivered ones by more than one commit interval, and
memory stays flat."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.integration.conftest import Service, Topics, produce, rss_mb
from tests.integration.streams import events_and_labels

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
N = 40_000
EVERY = 1000
BATCH = 512  # stream.loop.BATCH: a commit point is checked after each poll batch
CLIENT = "skewstream-slow-sink-test"
BYTES_PER_SECOND = 40_000  # about 150 score messages a second


def delivered(consumer: KafkaConsumer, topic: str) -> int:
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    return sum(consumer.end_offsets(parts).values())


def test_a_throttled_scores_topic_applies_back_pressure_with_bounded_memory(kafka_broker: Any, topics: Topics, tmp_path: Path) -> None:
    events, _, _ = events_and_labels(N, seed=8, delayed_share=0.0)
    produce(kafka_broker.bootstrap, topics.events, events)
    kafka_broker.throttle(CLIENT, BYTES_PER_SECOND)
    service = Service(kafka_broker.bootstrap, topics, tmp_path, every_events=EVERY, producer=f'client_id = "{CLIENT}"').start()
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    samples: list[tuple[float, float, int, float]] = []  # (seconds, scored, delivered, rss MB)
    try:
        service.wait_for("skewstream_events_scored_total", 1)
        started = time.monotonic()
        while time.monotonic() - started < 40:
            scored = service.value("skewstream_events_scored_total") or 0.0
            samples.append((time.monotonic() - started, scored, delivered(consumer, topics.scores), rss_mb(service.proc.pid)))  # type: ignore[union-attr]
            time.sleep(2)
        gaps = [s - d for _, s, d, _ in samples]
        assert max(gaps) <= EVERY + BATCH, samples  # never more than one commit interval unacknowledged
        assert samples[-1][1] < N / 2, samples  # held back by the slow sink, not racing through the input
        assert samples[-1][2] > samples[len(samples) // 2][2], samples  # and still moving
        late = [rss for t, _, _, rss in samples if t >= 10]
        assert max(late) - min(late) < 25, samples  # flat memory while the sink is slow
        assert service.stop(signal.SIGTERM) == 0, service.output()
        rate = (samples[-1][2] - samples[0][2]) / (samples[-1][0] - samples[0][0])
        print(f"\nslow sink: {rate:.0f} scores/s delivered, max unacknowledged {max(gaps):.0f}, RSS {min(late):.0f}-{max(late):.0f} MB")
    finally:
        consumer.close()
        kafka_broker.throttle(CLIENT, None)
        if service.proc is not None and service.proc.poll() is None:
            service.proc.kill()
