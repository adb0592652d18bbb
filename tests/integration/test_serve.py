"""skewstream serve against a real Kafka broker: delivery, dead letters, lag, metrics, restarts."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Service, Topics, consume_all, produce
from tests.integration.streams import BAD_RECORDS, events_and_labels, with_bad_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
N = 20_000


def send_stream(kafka: str, topics: Topics, n: int = N) -> set[str]:
    events, labels, _ = events_and_labels(n)
    produce(kafka, topics.events, with_bad_records(events))
    produce(kafka, topics.labels, labels)
    return {key.decode() for key, _ in events}


def scores_by_id(kafka: str, topics: Topics) -> collections.Counter[str]:
    return collections.Counter(m.key.decode() for m in consume_all(kafka, topics.scores))


def test_every_event_scored_bad_records_dead_lettered_lag_zero_metrics_match(kafka: str, topics: Topics, tmp_path: Path) -> None:
    ids = send_stream(kafka, topics)
    service = Service(kafka, topics, tmp_path).start()
    try:
        service.wait_for("skewstream_events_scored_total", N)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and service.value("skewstream_learn_steps_total") is None:
            time.sleep(0.2)
        scores = scores_by_id(kafka, topics)
        assert set(scores) == ids and max(scores.values()) == 1  # each valid event scored exactly once
        dead = consume_all(kafka, topics.dead)
        reasons = collections.Counter(dict(m.headers)["reason"].decode() for m in dead)
        assert reasons == collections.Counter(reason for _, reason in BAD_RECORDS)
        assert all(dict(m.headers)["source_topic"].decode() == topics.events for m in dead)
        text = _settled(service)
        for reason, count in reasons.items():
            assert f'skewstream_dead_letters_total{{reason="{reason}"}} {float(count)}' in text
        lags = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("skewstream_consumer_lag{")]
        assert len(lags) == 6 and set(lags) == {0.0}
        assert "skewstream_labels_total" in text
        assert service.stop(signal.SIGTERM) == 0
    finally:
        if service.proc and service.proc.poll() is None:
            service.proc.kill()


def _settled(service: Service) -> str:
    """Metrics once every label has been joined and lag is zero (published at most once a second)."""
    deadline = time.monotonic() + 30
    text = service.metrics()
    while time.monotonic() < deadline:
        text = service.metrics()
        lags = [line for line in text.splitlines() if line.startswith("skewstream_consumer_lag{")]
        if lags and all(line.endswith(" 0.0") for line in lags):
            return text
        time.sleep(0.5)
    return text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stop_midway_and_restart_loses_nothing_and_learns_nothing_twice(kafka: str, topics: Topics, tmp_path: Path, sig: int) -> None:
    ids = send_stream(kafka, topics)
    first = Service(kafka, topics, tmp_path, every_events=1500).start()
    first.wait_for("skewstream_events_scored_total", N // 3)
    code = first.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), first.output()
    checkpoints = sorted((tmp_path / "checkpoints" / "state" / "a").glob("checkpoint-*.ckpt"))
    assert checkpoints, first.output()

    second = Service(kafka, topics, tmp_path, every_events=1500, port=first.port).start()
    try:
        second.wait_for("skewstream_events_scored_total", 1, timeout=60)
        _wait_quiet(kafka, topics, len(ids), second)
        scores = scores_by_id(kafka, topics)
        assert set(scores) == ids  # no event without a score
        repeated = sum(c - 1 for c in scores.values())
        if sig == signal.SIGTERM:
            assert repeated == 0  # a graceful stop commits everything it scored
        else:
            assert 0 <= repeated <= 1500 + 3 * 512  # only what followed the last checkpoint
        learned = second.learned()
        assert learned and len(learned) == len(set(learned))  # nothing learned twice
        assert second.stop(signal.SIGTERM) == 0
    finally:
        if second.proc and second.proc.poll() is None:
            second.proc.kill()


def _wait_quiet(kafka: str, topics: Topics, expected: int, service: Service, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(scores_by_id(kafka, topics)) >= expected:
            return
    raise AssertionError(f"not every event was scored in time:\n{service.stalled()}")
