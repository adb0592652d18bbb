"""A real Apache Kafka broker for the integration tests, started once per session on 127.0.0.1.

Without Java/Maven the tests skip, unless SKEWSTREAM_REQUIRE_KAFKA=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stream.bench.procstat import status_mb
from tests.conftest import broker_module

ROOT = Path(__file__).resolve().parents[2]
STARTED: list[subprocess.Popen[bytes]] = []  # every service process, so none outlives its test


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh single-node Kafka (``deploy/kafka/broker.py``'s Broker)."""
    required = os.environ.get("SKEWSTREAM_REQUIRE_KAFKA") == "1"
    if not (shutil.which("java") and shutil.which("mvn")):
        if required:
            pytest.fail("SKEWSTREAM_REQUIRE_KAFKA=1 but java or mvn is missing")
        pytest.skip("no java/mvn: Kafka integration tests skipped")
    broker_mod = broker_module()
    try:
        broker = broker_mod.start(tmp_path_factory.mktemp("kafka"))
    except broker_mod.BrokerError as exc:
        if required:
            pytest.fail(f"Kafka broker did not start: {exc}")
        pytest.skip(f"Kafka broker did not start: {exc}")
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka(kafka_broker: Any) -> str:
    """Bootstrap address of the session's broker."""
    return str(kafka_broker.bootstrap)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    rss = status_mb("VmRSS", pid)
    assert rss == rss, "no VmRSS"
    return rss


def free_port() -> int:
    return int(broker_module().free_port())


@dataclass
class Topics:
    events: str
    labels: str
    scores: str
    dead: str

    @classmethod
    def create(cls, bootstrap: str, partitions: int = 3) -> Topics:
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        tag = uuid.uuid4().hex[:8]
        topics = cls(f"events-{tag}", f"labels-{tag}", f"scores-{tag}", f"dead-{tag}")
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(t, partitions, 1) for t in (topics.events, topics.labels, topics.scores, topics.dead)])
        finally:
            admin.close()
        return topics


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()


def consume_all(bootstrap: str, topic: str, quiet_seconds: float = 2.0, limit_seconds: float = 60.0) -> list[Any]:
    """Every message of ``topic`` (read until nothing new arrives for ``quiet_seconds``)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    messages: list[Any] = []
    deadline = time.monotonic() + limit_seconds
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_seconds:
            for batch in consumer.poll(timeout_ms=300).values():
                messages.extend(batch)
                last_new = time.monotonic()
    finally:
        consumer.close()
    return messages


@dataclass
class Service:
    """One ``skewstream serve`` process."""

    bootstrap: str
    topics: Topics
    workdir: Path
    instance: str = "a"
    group: str = "g"
    every_events: int = 2000
    port: int = field(default_factory=free_port)
    producer: str = ""  # extra kafka-python producer settings, TOML inline-table body
    model: str = "hoeffding"
    anomaly: str = "codebook"
    extra: str = ""  # more TOML (whole sections), appended to the config
    proc: subprocess.Popen[bytes] | None = None

    @property
    def learn_log(self) -> Path:
        return self.workdir / f"learned-{self.instance}.log"

    def config(self) -> Path:
        path = self.workdir / f"config-{self.instance}.toml"
        path.write_text(
            f"""
[kafka]
bootstrap_servers = "{self.bootstrap}"
group_id = "{self.group}"
instance_id = "{self.instance}"
events_topic = "{self.topics.events}"
labels_topic = "{self.topics.labels}"
scores_topic = "{self.topics.scores}"
dead_letters_topic = "{self.topics.dead}"
consumer = {{ session_timeout_ms = 6000, heartbeat_interval_ms = 500, max_poll_interval_ms = 60000 }}
producer = {{ {self.producer} }}

[checkpoint]
dir = "{self.workdir / 'checkpoints'}"
every_events = {self.every_events}
every_seconds = 5.0

[model]
kind = "{self.model}"

[selection]
enabled = false

[anomaly]
kind = "{self.anomaly}"

[metrics]
port = {self.port}
{self.extra}"""
        )
        return path

    def start(self) -> Service:
        env = {**os.environ, "SKEWSTREAM_TEST_LEARN_LOG": str(self.learn_log)}
        log = open(self.workdir / f"serve-{self.instance}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream", "serve", "--config", str(self.config())],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )  # fmt: skip
        log.close()
        STARTED.append(self.proc)
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())

    def value(self, name: str) -> float | None:
        try:
            text = self.metrics()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None

    def wait_for(self, name: str, at_least: float, timeout: float = 120.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.output()
            value = self.value(name)
            if value is not None and value >= at_least:
                return value
            time.sleep(0.2)
        raise AssertionError(f"{name} did not reach {at_least} in {timeout}s:\n{self.stalled()}")

    def stalled(self) -> str:
        """What a stuck service was doing: its counters, then every thread's stack (SIGUSR1), then killed."""
        assert self.proc is not None
        try:
            counters = "\n".join(line for line in self.metrics().splitlines() if line.startswith("skewstream_") and "_bucket" not in line)
        except OSError as exc:
            counters = f"(metrics unreachable: {exc!r})"
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(2.0)
        self.proc.kill()
        self.proc.wait()
        return f"--- metrics ---\n{counters[-6000:]}\n--- output (stacks last) ---\n{self.output(12000)}"

    def stop(self, sig: int, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def output(self, tail: int = 4000) -> str:
        path = self.workdir / f"serve-{self.instance}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def learned(self) -> list[str]:
        if not self.learn_log.exists():
            return []
        return [line.split()[0] for line in self.learn_log.read_text().splitlines()]


@pytest.fixture(autouse=True)
def no_service_left() -> Iterator[None]:
    """A failed test must not leave a service running into the next one (ports, groups, CPU)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def topics(kafka: str) -> Topics:
    return Topics.create(kafka)
