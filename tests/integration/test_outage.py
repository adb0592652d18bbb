"""A broker outage mid-stream: the service waits it out, reports it, loses nothing and catches up.

The test runs its own broker (stopping the session's would disturb the other tests) and brings it
back with its data on the same port, as a restarted broker or a failed-over listener would be.
"""

from __future__ import annotations

import collections
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import broker_module
from tests.integration.conftest import Service, Topics, consume_all, produce
from tests.integration.streams import events_and_labels

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
N = 30_000
OUTAGE_SECONDS = 20.0


def ready_status(service: Service) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/readyz", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_broker_outage_is_waited_out_reported_and_nothing_lost(kafka: str, tmp_path: Path) -> None:
    del kafka  # only for its skip/fail rule: this test needs its own broker
    brokers = broker_module()
    broker = brokers.start(tmp_path / "kafka")
    service: Service | None = None
    try:
        topics = Topics.create(broker.bootstrap)
        events, labels, _ = events_and_labels(N, seed=21)
        half = N // 2
        produce(broker.bootstrap, topics.events, events[:half])
        produce(broker.bootstrap, topics.labels, labels)
        service = Service(broker.bootstrap, topics, tmp_path, every_events=1000).start()
        service.wait_for("skewstream_events_scored_total", half // 2)

        broker.stop()  # mid-stream: the service has scored part of what is there
        down = time.monotonic()
        service.wait_for("skewstream_broker_unreachable", 1, timeout=30)
        assert ready_status(service) == 503
        while time.monotonic() - down < OUTAGE_SECONDS:
            assert service.proc is not None and service.proc.poll() is None, service.output()
            time.sleep(0.5)

        broker = brokers.restart(tmp_path / "kafka")
        produce(broker.bootstrap, topics.events, events[half:])
        expected = {key.decode() for key, _ in events}
        deadline = time.monotonic() + 180
        seen: collections.Counter[str] = collections.Counter()
        while time.monotonic() < deadline and not expected <= set(seen):
            assert service.proc.poll() is None, service.output()
            seen = collections.Counter(m.key.decode() for m in consume_all(broker.bootstrap, topics.scores, quiet_seconds=1.0))
        assert expected <= set(seen), f"{len(expected - set(seen))} events never scored"

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and service.value("skewstream_broker_unreachable") != 0:
            time.sleep(0.5)
        assert service.value("skewstream_broker_unreachable") == 0
        assert (service.value("skewstream_broker_outages_total") or 0) >= 1
        assert service.stop(signal.SIGTERM) == 0
        log = (tmp_path / "serve-a.log").read_text(errors="replace")
        assert "broker unreachable" in log and "broker back after" in log, log
        learned = collections.Counter(service.learned())
        assert learned and max(learned.values()) == 1  # nothing learned twice across the outage
        repeats = sum(seen.values()) - len(seen)
        print(f"\noutage {OUTAGE_SECONDS:.0f}s: {len(seen)} events scored, {repeats} repeated scores, {len(learned)} learned once each")
    finally:
        if service is not None and service.proc is not None and service.proc.poll() is None:
            service.proc.kill()
        broker.stop()
