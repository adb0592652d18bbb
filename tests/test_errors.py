"""Every class of user error fails fast with exit 2 and one line naming the setting and the fix.

(A missing topic needs a broker: ``tests/integration/test_failures.py``.)
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.cli import main


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    started = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - started < 10  # fast: no retry loop before giving up
    err = capsys.readouterr().err.strip()
    assert err.startswith("skewstream: error: ") and "\n" not in err, err
    return err


def test_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, ["replay", "x.jsonl", "--config", config(tmp_path, "[sampler]\ncodeword = 3\n")])
    assert "sampler.codeword" in err and "config-example" in err


def test_unknown_key_from_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKEWSTREAM_SAMPLER__CODEWORD", "3")
    err = one_line_error(capsys, ["replay", "x.jsonl"])
    assert "sampler.codeword" in err


def test_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, ["replay", "x.jsonl", "--config", config(tmp_path, '[threshold]\nalert_budget = "lots"\n')])
    assert "threshold.alert_budget" in err and "SKEWSTREAM_THRESHOLD__ALERT_BUDGET" in err


def test_port_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, ["replay", "x.jsonl", "--config", config(tmp_path, "[metrics]\nport = 70000\n")])
    assert "metrics.port" in err


def test_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str], busy_port: int) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "f0": 1.0}\n')
    err = one_line_error(capsys, ["replay", str(data), "--metrics-port", str(busy_port)])
    assert "metrics.port" in err and "in use" in err and "free port" in err


def test_unwritable_checkpoint_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    text = f'[checkpoint]\ndir = "{blocker / "checkpoints"}"\n[kafka]\nbootstrap_servers = "127.0.0.1:{closed_port()}"\n'
    err = one_line_error(capsys, ["serve", "--config", config(tmp_path, text)])
    assert "checkpoint.dir" in err and "writable directory" in err


def test_unreachable_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = f'[checkpoint]\ndir = "{tmp_path / "ck"}"\n[kafka]\nbootstrap_servers = "127.0.0.1:{closed_port()}"\n'
    err = one_line_error(capsys, ["serve", "--config", config(tmp_path, text)])
    assert "kafka.bootstrap_servers" in err and "Kafka is running" in err


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line_error(capsys, ["replay", str(tmp_path / "missing.jsonl")])
    assert "missing.jsonl" in err
