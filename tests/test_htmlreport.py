from __future__ import annotations

from pathlib import Path

import pytest

from stream.app import ReplayOptions, replay
from stream.cli import main
from tests.conftest import small_settings


def test_report_joins_scores_and_labels_into_one_self_contained_page(tmp_path: Path, demo_file) -> None:  # type: ignore[no-untyped-def]
    path, stream = demo_file
    scores = tmp_path / "scores.jsonl"
    replay(small_settings(), ReplayOptions(path, out=scores))
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(scores), "--labels", str(path), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("data:image/png;base64,") == 3 and "PR-AUC" in page and "6,000" in page
    assert f"{len(stream.y):,} / {int(stream.y.sum()):,}" in page  # every label joined, delayed ones too
    assert "alerts: G-mean / kappa" in page and "class decision: G-mean / kappa" in page
    for name in ("curves", "rolling", "histogram"):
        assert (tmp_path / "r" / f"report-{name}.png").stat().st_size > 5_000


def test_report_without_labels_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = tmp_path / "s.jsonl"
    scores.write_text('{"id": "a", "ts": 1, "score": 0.1, "anomaly": 0, "alert": false, "threshold": 0.5, "model_version": 1}\n')
    assert main(["report", str(scores), "--out", str(tmp_path / "r.html")]) == 2
    assert "--labels" in capsys.readouterr().err
