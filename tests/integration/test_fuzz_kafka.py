"""10,000 bad records mixed into a valid stream on Kafka: no crash, each one dead-lettered with its
reason, and every valid event's score identical to a run of the same stream without them."""

from __future__ import annotations

import collections
import signal
from pathlib import Path

import orjson
import pytest

from stream.events import REASONS
from tests.integration.conftest import Service, Topics, consume_all, produce
from tests.integration.streams import events_and_labels, mixed_with_random_bad_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]
N_VALID = 5_000
N_BAD = 10_000


def run(kafka: str, workdir: Path, values: list[bytes], expect_scores: int, expect_dead: int) -> tuple[dict[str, tuple[float, float, bool]], list[object]]:
    """Serve ``values`` from a one-partition topic (one order) until all are handled; scores and dead letters."""
    topics = Topics.create(kafka, partitions=1)
    workdir.mkdir()
    produce(kafka, topics.events, [(None, v) for v in values])
    service = Service(kafka, topics, workdir, every_events=1000).start()
    try:
        service.wait_for("skewstream_events_scored_total", expect_scores, timeout=240)
        if expect_dead:
            service.wait_for("skewstream_events_total{outcome=\"dead_lettered\"}", expect_dead, timeout=120)
        assert service.stop(signal.SIGTERM) == 0, service.output()
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.proc.kill()
    scores = {}
    for message in consume_all(kafka, topics.scores):
        value = orjson.loads(message.value)
        scores[value["id"]] = (value["score"], value["anomaly"], value["alert"])
    return scores, consume_all(kafka, topics.dead)


def test_ten_thousand_bad_records_are_dead_lettered_and_change_no_score(kafka: str, tmp_path: Path) -> None:
    events, _, _ = events_and_labels(N_VALID, seed=5, delayed_share=0.0)
    valid = [value for _, value in events]
    mixed, bad = mixed_with_random_bad_records(valid, N_BAD, seed=17)

    clean_scores, clean_dead = run(kafka, tmp_path / "clean", valid, N_VALID, 0)
    scores, dead = run(kafka, tmp_path / "mixed", mixed, N_VALID, N_BAD)

    assert not clean_dead and len(clean_scores) == N_VALID
    assert scores == clean_scores  # every valid event: the same score, anomaly and alert
    assert len(dead) == N_BAD
    got = collections.Counter(m.value for m in dead)  # type: ignore[attr-defined]
    assert got == collections.Counter(raw for raw, _ in bad)  # each bad record, byte for byte
    reason_of = {m.value: dict(m.headers)["reason"].decode() for m in dead}  # type: ignore[attr-defined]
    assert set(reason_of.values()) <= set(REASONS)
    wrong = [(raw[:60], want, reason_of[raw]) for raw, want in bad if want is not None and reason_of[raw] != want]
    assert not wrong, wrong[:5]
    print("\n" + ", ".join(f"{r}: {c}" for r, c in collections.Counter(dict(m.headers)["reason"].decode() for m in dead).most_common()))  # type: ignore[attr-defined]
