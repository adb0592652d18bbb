"""Soak: 2,000,000 events through ``serve``. Memory is flat once the bounded stores are full and the
process has warmed up (RSS grows under 8% over the second half of the run) and throughput is steady.

The stores are full long before half-way: the dedupe window (200,000 ids) at 200,000 events, the
label store (capped at 50,000 here) at about 170,000, since 30% of the demo stream's events carry no
label and none comes (with the default cap of 200,000 it would fill until about 670,000 events:
bounded, but not yet flat). The first half also holds the process's warm-up (allocator arenas,
checkpoint buffers): in 1M-event runs RSS still moved by 15-35 MB after 250,000 events and by up to
25 MB between quarters (338, 353, 349, 374 MB), so the 10% limit this test once had from a quarter
of a 1M run to its end failed on a healthy service whenever the compiled kernels were cached (compiling
them adds about 100 MB to the baseline, which hid it); over 2M events it settles (365, 371, 373, 376 MB). 8% of the second half's 1,000,000 events is a leak of
about 30 bytes an event.

The model is ``logreg`` with the codebook anomaly score, whose size is fixed: what is measured is
the service around it (dedupe window, label store, producer, checkpoints, metrics). Set
``SKEWSTREAM_SOAK_EVENTS`` to soak longer (about 4 minutes for the default 2,000,000).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from stream.synth import DEMO, event_record, generate
from tests.integration.conftest import Service, Topics, produce, rss_mb

N = int(os.environ.get("SKEWSTREAM_SOAK_EVENTS", "2000000"))
CHUNK = 250_000
STORES = "[labels]\nmax_pending = 50000\n"  # full long before half-way (see above)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def produce_stream(kafka: str, topic: str) -> None:
    """The demo stream (drifts, prior shift), cycled with fresh ids and times, in chunks."""
    stream = generate(replace(DEMO, n=CHUNK, seed=13))
    base = [event_record(stream, i) for i in range(CHUNK)]
    span = float(stream.ts[-1] - stream.ts[0]) + 1.0
    for start in range(0, N, CHUNK):
        lap = start // CHUNK
        messages = []
        for i in range(min(CHUNK, N - start)):
            record = {**base[i], "id": f"s{start + i:09d}", "ts": float(base[i]["ts"]) + lap * span}  # type: ignore[arg-type]
            messages.append((record["id"].encode(), orjson.dumps(record)))  # type: ignore[union-attr]
        produce(kafka, topic, messages)


def test_a_million_events_or_more_flat_memory_steady_throughput(kafka: str, tmp_path: Path) -> None:
    topics = Topics.create(kafka)
    produce_stream(kafka, topics.events)
    service = Service(kafka, topics, tmp_path, every_events=20_000, model="logreg", extra=STORES).start()
    marks: list[tuple[int, float, float]] = []  # (events scored, seconds, RSS MB)
    try:
        service.wait_for("skewstream_events_scored_total", 1)
        started = time.monotonic()
        for mark in (N // 4, N // 2, 3 * N // 4, N):
            service.wait_for("skewstream_events_scored_total", mark, timeout=900)
            marks.append((mark, time.monotonic() - started, rss_mb(service.proc.pid)))  # type: ignore[union-attr]
        assert service.stop(signal.SIGTERM) == 0, service.output()
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.proc.kill()
    (n0, t0, _), (n1, t1, rss1), _, (n3, t3, rss3) = marks
    growth = rss3 / rss1 - 1
    early, late = (n1 - n0) / (t1 - t0), (n3 - n1) / (t3 - t1)
    print(f"\nsoak {N:,} events: RSS {rss1:.0f} MB at {n1:,} -> {rss3:.0f} MB at {n3:,} ({growth:+.1%}); "
          f"{early:,.0f} ev/s then {late:,.0f} ev/s; RSS at each quarter {[round(m[2]) for m in marks]} MB")  # fmt: skip
    # 8%: RSS moves by 10-25 MB between marks with no trend (allocator; one CI run of four: 385, 378,
    # 401, 402 MB at the quarters, +6.3%); a leak of 50 bytes an event is 100 MB over the run.
    assert growth < 0.08, marks
    assert late > 0.7 * early, marks  # steady: no slow-down as the run goes on
