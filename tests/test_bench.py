"""bench quality's parts: imbalanced streams with their drifts, the metrics, the ranks, one real run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream.bench import quality
from stream.bench.streams import BenchStream, from_file, suite


def test_suite_streams_have_the_asked_imbalance_and_drifts() -> None:
    streams = suite(20_000, seed=3)
    assert {"sea-abrupt-1:100", "sea-abrupt-1:1000", "agrawal-gradual-1:100", "rbf-prior-shift", "shuttle"} <= set(streams)
    sea = streams["sea-abrupt-1:100"]()
    assert sea.x.shape == (20_000, 3) and sea.drifts == [10_000]
    assert 0.007 < sea.y.mean() < 0.013
    shift = streams["rbf-prior-shift"]()
    before, after = shift.y[:10_000].mean(), shift.y[10_000:].mean()
    assert 0.007 < before < 0.013 and after < 0.003  # 1:100 then 1:1000


def test_a_concept_drift_changes_what_positives_look_like() -> None:
    sea = suite(20_000, seed=3)["sea-abrupt-1:100"]()
    pos = sea.y == 1
    first, second = sea.x[:10_000][pos[:10_000]], sea.x[10_000:][pos[10_000:]]
    # SEA's concepts differ in the threshold on f0 + f1: the positives move.
    assert abs(np.mean(first[:, 0] + first[:, 1]) - np.mean(second[:, 0] + second[:, 1])) > 0.5


def test_metrics_use_each_methods_own_decisions_and_recovery_windows() -> None:
    y = np.array([0] * 90 + [1] * 10)
    stream = BenchStream("s", "test", np.zeros((100, 1)), y, drifts=[50])
    perfect = quality.score_metrics(stream, y.astype(float), y.astype(bool), 1.0, 10.0)
    assert perfect["pr_auc"] == 1.0 and perfect["gmean"] == 1.0 and perfect["kappa"] == 1.0
    silent = quality.score_metrics(stream, y.astype(float), np.zeros(100, dtype=bool), 1.0, 10.0)
    assert silent["pr_auc"] == 1.0 and silent["gmean"] == 0.0  # ranks perfectly, never alerts
    assert perfect["events_per_s"] == 100.0


def test_mean_ranks_share_ties_and_average_over_streams() -> None:
    def outcome(stream: str, method: str, pr: float) -> quality.Outcome:
        return quality.Outcome(stream, method, {k: pr for k in quality.RANKED})

    ranks = quality.mean_ranks([outcome("a", "x", 0.9), outcome("a", "y", 0.5), outcome("b", "x", 0.3), outcome("b", "y", 0.3)])
    assert ranks["x"]["pr_auc"] == pytest.approx((1 + 1.5) / 2)
    assert ranks["y"]["pr_auc"] == pytest.approx((2 + 1.5) / 2)


def test_a_user_file_becomes_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"id": str(i), "ts": i, "label": i % 2, "a": i, "b": 1.5}) + b"\n" for i in range(10)))
    stream = from_file(path)
    assert stream.x.shape == (10, 2) and stream.y.tolist() == [i % 2 for i in range(10)]


def test_a_small_run_writes_table_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quality.run(3_000, [1], ["sea-abrupt-1:100"], [], ["river HT"], tmp_path) == 0
    data = orjson.loads((tmp_path / "quality.json").read_bytes())
    methods = {o["method"] for o in data["outcomes"]}
    assert methods == {"skewstream (default)", "skewstream (default), alerts at a 1% budget", "river HT"}
    assert all(not math.isnan(o["metrics"]["pr_auc"]) for o in data["outcomes"])
    # One run, two decisions: the same ranking metrics, the class decision flagging more than the budget.
    own, alerts = (next(o["metrics"] for o in data["outcomes"] if o["method"] == m) for m in ("skewstream (default)", "skewstream (default), alerts at a 1% budget"))
    assert own["pr_auc"] == alerts["pr_auc"] and own["gmean"] != alerts["gmean"]
    assert "Mean rank" in (tmp_path / "quality.md").read_text()
    assert (tmp_path / "quality.png").stat().st_size > 10_000


def test_memory_bench_reports_rss_at_every_chunk_and_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    from stream.bench.memory import main

    assert main(25_000, 1, chunk=10_000) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert [int(r.split("|")[1].replace(",", "")) // 1000 for r in rows] == [10, 20, 25]
    assert "RSS at 10," in out


def test_a_second_skewstream_row_is_ranked_in_place_of_the_default_not_beside_it() -> None:
    from stream.bench.quality import RANKED, Outcome, mean_ranks

    def row(method: str, value: float) -> Outcome:
        return Outcome("s", method, dict.fromkeys(RANKED, value))

    second = "skewstream (default), alerts at a 1% budget"
    ranks = mean_ranks([row("skewstream (default)", 0.5), row(second, 0.9), row("peer", 0.7)])
    assert ranks["peer"]["gmean"] == 1.0  # ranked against the default only: it beats it
    assert ranks["skewstream (default)"]["gmean"] == 2.0
    assert ranks[second]["gmean"] == 1.0  # against the peer alone


def test_several_seeds_draw_the_suite_once_each_and_rank_over_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert quality.run(2_000, [1, 2], ["sea-abrupt-1:100", "shuttle"], [], ["river HT"], tmp_path) == 0
    data = orjson.loads((tmp_path / "quality.json").read_bytes())
    assert {o["stream"] for o in data["outcomes"]} == {"sea-abrupt-1:100@1", "sea-abrupt-1:100@2", "shuttle"}  # real data once
    runs = {o["stream"]: o["metrics"]["pr_auc"] for o in data["outcomes"] if o["method"] == "river HT"}
    assert runs["sea-abrupt-1:100@1"] != runs["sea-abrupt-1:100@2"]  # other draws, not one stream twice
    text = (tmp_path / "quality.md").read_text()
    mean = (runs["sea-abrupt-1:100@1"] + runs["sea-abrupt-1:100@2"]) / 2
    assert f"| river HT | {mean:.3f} (" in text.split("PR-AUC, mean over seeds 1, 2")[1]
