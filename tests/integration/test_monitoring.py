"""A real Prometheus scrapes a live `serve`; every dashboard panel and alert rule runs against it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_tool
from tests.integration.conftest import ROOT, Service, Topics, free_port, produce
from tests.integration.streams import events_and_labels, with_bad_records
from tests.test_dashboards import generate, rule_exprs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        binary = require_tool("prometheus", "Debian package prometheus")
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ROOT / "dashboards" / "prometheus" / "alerts.yml")],
            "scrape_configs": [{"job_name": "skewstream", "static_configs": [{"targets": [target]}]}],
        }))  # fmt: skip
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def query(self, expr: str) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return dict(json.loads(reply.read()))
        except urllib.error.HTTPError as exc:  # a PromQL error answers 400 with a JSON body
            return dict(json.loads(exc.read()))

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("prometheus did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def live(kafka: str, topics: Topics, tmp_path: Path) -> Iterator[tuple[Service, Prometheus]]:
    events, labels, _ = events_and_labels(12_000, seed=9)
    service = Service(kafka, topics, tmp_path, every_events=500).start()
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{service.port}")
    try:
        service.wait_for("skewstream_model_version", 1, timeout=60)
        prometheus.wait_ready()
        # Keep the service busy while Prometheus scrapes: 12 chunks, about one a second.
        mixed = with_bad_records(events)
        chunks = [mixed[i::12] for i in range(12)]

        def feed() -> None:
            for i, chunk in enumerate(chunks):
                produce(kafka, topics.events, sorted(chunk, key=lambda m: m[0] or b""))
                produce(kafka, topics.labels, labels[i::12])
                time.sleep(1.0)

        feeder = threading.Thread(target=feed)
        feeder.start()
        feeder.join(timeout=120)
        time.sleep(3)
        yield service, prometheus
    finally:
        prometheus.stop()
        if service.proc and service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()


def concrete(expr: str) -> str:
    return expr.replace("$job", ".*").replace("$instance", ".*").replace("$__rate_interval", "30s")


def test_every_dashboard_panel_returns_series_and_every_alert_rule_evaluates(live: tuple[Service, Prometheus]) -> None:
    _, prometheus = live
    up = prometheus.query('up{job="skewstream"}')
    assert up["status"] == "success" and up["data"]["result"], up  # type: ignore[index]
    empty = []
    for expr in generate.queries():
        answer = prometheus.query(concrete(expr))
        assert answer["status"] == "success", (expr, answer)
        if not answer["data"]["result"] and "changes(" not in expr:  # type: ignore[index]
            empty.append(expr)
    assert not empty, f"panels without data: {empty}"
    for expr in rule_exprs():
        answer = prometheus.query(expr)
        assert answer["status"] == "success", (expr, answer)
