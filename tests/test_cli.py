"""The command line as a user runs it, the metrics endpoint, settings errors and packaging."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from importlib.metadata import distribution
from pathlib import Path

import pytest

from stream.app import ReplayOptions, replay
from stream.cli import main
from stream.config import ConfigError, load_settings
from stream.loop import Runner
from tests.conftest import small_settings


def test_synth_then_replay_prints_the_report_and_writes_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "demo.jsonl"
    assert main(["synth", str(data), "--events", "3000"]) == 0
    assert main(["synth", str(data), "--if-absent"]) == 0
    out = tmp_path / "scores.jsonl"
    code = main(["replay", str(data), "--out", str(out), "--model", "hoeffding", "--no-progress",
                 "--checkpoint-dir", str(tmp_path / "ck")])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "end of run" in printed and "pr_auc" in printed and "dead letters" in printed
    assert out.read_bytes().count(b"\n") == 3000
    assert (tmp_path / "scores.quality.png").stat().st_size > 10_000
    assert list((tmp_path / "ck").glob("checkpoint-*.ckpt"))


def test_python_dash_m_stream_is_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "stream", "--help"], capture_output=True, text=True, check=True)
    assert "replay" in done.stdout and "synth" in done.stdout


def test_errors_are_one_line_naming_the_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sampler]\ncodeword = 3\n")
    assert main(["replay", "missing.jsonl", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "sampler.codeword" in err
    assert main(["replay", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"model": {"kind": "svm"}}, "model.kind"),
        ({"sampler": {"ratio": -1}}, "sampler.ratio"),
        ({"threshold": {"alert_budget": "lots"}}, "threshold.alert_budget"),
        ({"input": {"id_field": "x", "label_field": "x"}}, "label_field"),
    ],
)
def test_invalid_settings_name_their_key(overrides: dict[str, dict[str, object]], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(None, **overrides)


def test_env_overrides_file_and_nested_keys_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[sampler]\ncodewords = 8\nratio = 3.0\n")
    monkeypatch.setenv("SKEWSTREAM_SAMPLER__CODEWORDS", "16")
    settings = load_settings(toml, metrics={"port": 9999})
    assert (settings.sampler.codewords, settings.sampler.ratio, settings.metrics.port) == (16, 3.0, 9999)
    assert settings.metrics.host == "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_endpoint_serves_counters_that_match_the_run(demo_file) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    scraped: list[tuple[str, dict[str, int]]] = []

    def scrape(runner: Runner) -> None:
        if not scraped and runner.pipeline.counts["scored"] > 2000:
            runner.publish()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                scraped.append((reply.read().decode(), dict(runner.pipeline.counts)))

    replay(small_settings(), ReplayOptions(demo_file[0], metrics_port=port), progress=scrape)
    text, counts = scraped[0]
    assert f"skewstream_events_scored_total {float(counts['scored'])}" in text
    assert f"skewstream_learn_steps_total {float(counts['learned'])}" in text
    assert 'skewstream_dead_letters_total{reason="invalid_json"} 0.0' in text
    assert 'skewstream_quality{metric="pr_auc",window="rolling"}' in text
    assert "skewstream_alert_budget 0.01" in text
    assert "skewstream_batch_duration_seconds_bucket" in text


def test_packages_resolve_to_this_distribution() -> None:
    files = {str(f) for f in distribution("skewstream").files or []}
    import connectors
    import stream

    assert Path(stream.__file__).parent.name == "stream" and Path(connectors.__file__).parent.name == "connectors"
    assert any("skewstream" in f for f in files)
    assert distribution("skewstream").entry_points.select(name="skewstream")
