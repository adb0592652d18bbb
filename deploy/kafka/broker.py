"""A single-node Apache Kafka 4.x (KRaft, combined broker+controller) on 127.0.0.1.

Used by the integration tests and for local runs; standard library only:

    python deploy/kafka/broker.py start --dir /tmp/kafka   # prints the bootstrap address, runs in background
    python deploy/kafka/broker.py stop --dir /tmp/kafka
    python deploy/kafka/broker.py restart --dir /tmp/kafka # back on the same port, with its data

The jars come from Maven Central through ``mvn`` (``pom.xml`` beside this file) into a cache outside
the repository (``$SKEWSTREAM_CACHE`` or ``~/.cache/skewstream``), once. The broker's data, logs and
PID live in ``--dir``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION = re.search(r"<kafka.version>([^<]+)<", (HERE / "pom.xml").read_text()).group(1)  # type: ignore[union-attr]


class BrokerError(RuntimeError):
    pass


def cache_dir() -> Path:
    """Keyed by the pom's content: editing the dependencies resolves a fresh classpath."""
    root = Path(os.environ.get("SKEWSTREAM_CACHE", Path.home() / ".cache" / "skewstream"))
    digest = hashlib.sha256((HERE / "pom.xml").read_bytes()).hexdigest()[:10]
    return root / f"kafka-{VERSION}-{digest}"


def ensure_jars() -> Path:
    """The broker's classpath directory, resolved with Maven on first use."""
    lib = cache_dir() / "lib"
    done = lib / ".complete"
    if done.exists():
        return lib
    lib.mkdir(parents=True, exist_ok=True)
    cmd = ["mvn", "-q", "-B", "-f", str(HERE / "pom.xml"), "dependency:copy-dependencies", f"-DoutputDirectory={lib}"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    except FileNotFoundError:
        raise BrokerError("mvn not found: Maven is needed to fetch the Kafka broker jars") from None
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(lib, ignore_errors=True)
        raise BrokerError(f"mvn could not resolve Kafka {VERSION}: {exc.stdout[-2000:]}{exc.stderr[-2000:]}") from None
    done.touch()
    return lib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    port: int
    pid: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None  # held so the child is reaped, not left a zombie

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        stop(self.directory, timeout)
        if self.proc is not None:
            self.proc.wait(timeout=timeout)

    def throttle(self, client_id: str, producer_byte_rate: int | None) -> None:
        """Set (or with None remove) a produce quota for one client id: a slow broker, for tests."""
        change = (
            ["--add-config", f"producer_byte_rate={producer_byte_rate}"]
            if producer_byte_rate is not None
            else ["--delete-config", "producer_byte_rate"]
        )
        command = [*_java(ensure_jars(), self.directory), "kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap,
                   "--alter", "--entity-type", "clients", "--entity-name", client_id, *change]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise BrokerError(f"setting a quota failed: {done.stdout[-1500:]}{done.stderr[-1500:]}")


def _properties(directory: Path, port: int, controller_port: int) -> Path:
    props = directory / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"log.dirs={directory / 'data'}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
            ]
        )
        + "\n"
    )
    return props


def _log4j(directory: Path) -> Path:
    config = directory / "log4j2.properties"
    config.write_text(
        "\n".join(
            [
                "appender.file.type=File",
                "appender.file.name=file",
                f"appender.file.fileName={directory / 'broker.log'}",
                "appender.file.layout.type=PatternLayout",
                "appender.file.layout.pattern=%d %p %c{1}: %m%n",
                "rootLogger.level=INFO",
                "rootLogger.appenderRef.file.ref=file",
            ]
        )
        + "\n"
    )
    return config


def cluster_id() -> str:
    """A random KRaft cluster id, as Kafka makes one: URL-safe base64 of a UUID that does not start with
    "-" (the storage tool's argument parser would take one that does for an option: 1 start in 64 failed)."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster


def start(directory: Path, port: int = 0, timeout: float = 120.0) -> Broker:
    """Format fresh storage, start the broker in the background, wait until it serves requests.

    The broker's data starts empty at every start (a test broker, not a place to keep data); use
    :func:`restart` to bring a stopped broker back with its data, port and cluster id."""
    lib = ensure_jars()
    directory = Path(directory).resolve()
    stop(directory)
    shutil.rmtree(directory / "data", ignore_errors=True)
    for old in ("broker.log", "broker.out"):
        (directory / old).unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    props = _properties(directory, port, free_port())
    java = _java(lib, directory)
    cluster = cluster_id()
    formatted = subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(props)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if formatted.returncode != 0:
        raise BrokerError(f"formatting the storage failed: {formatted.stdout[-1500:]}{formatted.stderr[-1500:]}")
    return _launch(java, directory, port, props, timeout)


def restart(directory: Path, timeout: float = 120.0) -> Broker:
    """Start a stopped broker again on its old port with its data (an outage ends)."""
    directory = Path(directory).resolve()
    props = directory / "server.properties"
    if not props.exists() or not (directory / "data").exists():
        raise BrokerError(f"no stopped broker in {directory} (start one first)")
    stop(directory)
    port = int((directory / "broker.port").read_text())
    return _launch(_java(ensure_jars(), directory), directory, port, props, timeout, restarted=True)


def _java(lib: Path, directory: Path) -> list[str]:
    return ["java", f"-Dlog4j2.configurationFile={_log4j(directory)}", "-cp", f"{lib}/*"]


def _launch(
    java: list[str], directory: Path, port: int, props: Path, timeout: float, restarted: bool = False
) -> Broker:
    log = directory / "broker.log"
    seen = log.read_text(errors="replace").count(READY) if restarted and log.exists() else 0
    with open(directory / "broker.out", "ab") as out:
        proc = subprocess.Popen(
            [*java[:1], "-Xmx512m", "-Xms128m", *java[1:], "kafka.Kafka", str(props)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    (directory / "broker.pid").write_text(str(proc.pid))
    (directory / "broker.port").write_text(str(port))
    broker = Broker(port, proc.pid, directory, proc)
    _wait_ready(broker, proc, timeout, seen)
    return broker


READY = "Kafka Server started"


def _wait_ready(broker: Broker, proc: subprocess.Popen[bytes], timeout: float, seen: int = 0) -> None:
    """Until the log says started once more than the ``seen`` times before this launch."""
    deadline = time.monotonic() + timeout
    log = broker.directory / "broker.log"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"Kafka exited with {proc.returncode}; see {broker.directory / 'broker.out'}")
        if log.exists() and log.read_text(errors="replace").count(READY) > seen:
            return
        time.sleep(0.2)
    broker.stop()
    raise BrokerError(f"Kafka did not start within {timeout:.0f}s; see {log}")


def stop(directory: Path, timeout: float = 30.0) -> None:
    """SIGTERM the broker recorded in ``directory`` (SIGKILL after ``timeout``)."""
    pid_file = Path(directory) / "broker.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its end
            done = 0 if _alive(pid) else pid
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "restart", "stop", "jars"))
    parser.add_argument("--dir", type=Path, default=Path("/tmp/skewstream-kafka"))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.action == "jars":
            print(ensure_jars())
        elif args.action in ("start", "restart"):
            broker = start(args.dir, args.port) if args.action == "start" else restart(args.dir)
            print(f"Kafka {VERSION} on {broker.bootstrap} (pid {broker.pid}, data in {broker.directory})")
        else:
            stop(args.dir)
    except BrokerError as exc:
        print(f"broker: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
