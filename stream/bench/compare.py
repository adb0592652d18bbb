"""``skewstream bench compare|speed``: skewstream against river's own loop on the same stream.

compare: prequential (test-then-train, same order for all) PR-AUC, ROC-AUC and recall at a 1%
alert budget of skewstream's default pipeline and of river's HoeffdingTreeClassifier and
RandomUnderSampler(HoeffdingTreeClassifier), both with ``max_share_to_split=1.0`` (the default
0.99 never splits at a 1% minority: a straw man). Every score comes from the same functions.

speed: events/s of ``skewstream replay`` (whole path: file, decode, features, score, sample,
learn, sink) and of river's ``progressive_val_score`` with the same model family, in one run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import river.ensemble
import river.evaluate
import river.imblearn
import river.linear_model
import river.metrics
import river.optim
import river.preprocessing
import river.tree

from stream.app import ReplayOptions, replay
from stream.config import ModelSettings, load_settings
from stream.quality import average_precision, recall_at_budget, roc_auc
from stream.synth import ABRUPT, DEMO, Stream, feature_names, write_jsonl


def _rows(stream: Stream) -> Iterator[tuple[dict[str, float], int]]:
    names = feature_names(stream.x.shape[1])
    for row, y in zip(stream.x.tolist(), stream.y.tolist()):
        yield dict(zip(names, row)), int(y)


def river_prequential(model: Any, stream: Stream) -> tuple[np.ndarray, float]:
    """Scores of ``model`` in a test-then-train loop, and the loop's wall time."""
    scores = np.empty(stream.y.shape[0])
    started = time.perf_counter()
    for i, (x, y) in enumerate(_rows(stream)):
        scores[i] = model.predict_proba_one(x).get(1, 0.0)
        model.learn_one(x, y)
    return scores, time.perf_counter() - started


def river_twin(kind: str, s: ModelSettings) -> Any:
    """river's own model of the family skewstream's ``kind`` compiles (the speed baseline)."""
    tree = river.tree.HoeffdingTreeClassifier(grace_period=s.grace_period, max_share_to_split=1.0)
    if kind == "bagging":
        return river.ensemble.BaggingClassifier(tree, n_models=s.ensemble_size, seed=s.seed)
    if kind == "hoeffding":
        return tree
    if kind == "logreg":
        return river.preprocessing.StandardScaler() | river.linear_model.LogisticRegression(river.optim.SGD(s.learning_rate))
    raise ValueError(f"no river twin for model kind {kind!r}")


def skewstream_prequential(path: Path, model: str | None = None) -> tuple[np.ndarray, float]:
    """Scores of ``skewstream replay`` on the file, and the replay's wall time."""
    overrides = {"model": {"kind": model}, "selection": {"enabled": False}} if model else {}
    settings = load_settings(None, **overrides)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.jsonl"
        result = replay(settings, ReplayOptions(path, out=out))
        rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    ids = [row["id"] for row in rows]
    if len(set(ids)) != len(ids) or len(ids) != result.pipeline.counts["scored"]:
        raise AssertionError("an event was scored twice or not at all")
    return np.array([row["score"] for row in rows]), result.seconds


def _hoeffding() -> Any:
    return river.tree.HoeffdingTreeClassifier(max_share_to_split=1.0)


PEERS: dict[str, Callable[[], Any]] = {
    "river HoeffdingTree": _hoeffding,
    "river RandomUnderSampler(HoeffdingTree)": lambda: river.imblearn.RandomUnderSampler(
        _hoeffding(), desired_dist={0: 0.5, 1: 0.5}, seed=1
    ),
}


def _line(name: str, scores: np.ndarray, y: np.ndarray, seconds: float, drift: int) -> str:
    after = slice(drift, min(drift + 20_000, y.shape[0]))
    return (
        f"| {name} | {average_precision(scores, y):.4f} | {roc_auc(scores, y):.4f} "
        f"| {recall_at_budget(scores, y, 0.01):.4f} | {average_precision(scores[after], y[after]):.4f} "
        f"| {y.shape[0] / seconds:,.0f} |"
    )


PROFILES = {
    "abrupt": "1% positives, one abrupt drift at 50%",
    "demo": "0.4-0.8% positives, abrupt drift at 40%, gradual drift 60-75%, prior shift at 80%",
}


def compare(events: int, seed: int, profile: str = "abrupt") -> list[str]:
    spec = replace(ABRUPT if profile == "abrupt" else DEMO, n=events, seed=seed, delayed_share=0.0)
    lines = [
        f"stream: {events:,} events, {PROFILES[profile]} (seed {seed})",
        "| method | PR-AUC | ROC-AUC | recall@1% | PR-AUC 20k after drift | events/s |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        stream = write_jsonl(spec, path)
        y = stream.y.astype(np.int64)
        scores, seconds = skewstream_prequential(path)
        if scores.shape[0] != events:
            raise AssertionError(f"{scores.shape[0]} scores for {events} events")
        lines.append(f"skewstream scored each of the {events:,} events exactly once")
        lines.append(_line("skewstream (default: champion of logreg, hoeffding, bagging)", scores, y, seconds, stream.drifts[0]))
        for kind in load_settings(None).selection.candidates:
            scores, seconds = skewstream_prequential(path, kind)
            lines.append(_line(f"skewstream, {kind} alone", scores, y, seconds, stream.drifts[0]))
        for name, make in PEERS.items():
            scores, seconds = river_prequential(make(), stream)
            lines.append(_line(name, scores, y, seconds, stream.drifts[0]))
    return lines


def speed(events: int, seed: int) -> list[str]:
    spec = replace(ABRUPT, n=events, seed=seed, delayed_share=0.0)
    lines = ["| pipeline | model | events/s | ratio to river's loop |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        stream = write_jsonl(spec, path)
        settings = load_settings(None)
        rates = {}
        for kind in (settings.model.kind, "logreg"):
            river_model = river_twin(kind, settings.model)
            started = time.perf_counter()
            river.evaluate.progressive_val_score(_rows(stream), river_model, river.metrics.ROCAUC())  # type: ignore[arg-type]
            rates[kind] = river_rate = events / (time.perf_counter() - started)
            _, seconds = skewstream_prequential(path, kind)
            ours = events / seconds
            lines.append(f"| river progressive_val_score | {kind} | {river_rate:,.0f} | 1.00 |")
            lines.append(f"| skewstream replay (file, full path) | {kind} alone | {ours:,.0f} | {ours / river_rate:.2f} |")
        _, seconds = skewstream_prequential(path)  # the contest scores with all three, learns in all three
        ours, kind = events / seconds, settings.model.kind
        lines.append(f"| skewstream replay, default (contest of {', '.join(settings.selection.candidates)}) "
                     f"| {kind} served | {ours:,.0f} | {ours / rates[kind]:.2f} |")  # fmt: skip
        from stream.bench.stages import table

        for kind in (settings.model.kind, "logreg"):
            overrides = {} if kind == settings.model.kind else {"model": {"kind": kind}, "selection": {"enabled": False}}
            lines += ["", *table(path, load_settings(None, **overrides), "default settings" if not overrides else f"{kind} alone")]
    return lines


def main(what: str, events: int, seed: int, profile: str = "abrupt") -> int:
    lines = compare(events, seed, profile) if what == "compare" else speed(events, seed)
    print("\n".join(lines))
    return 0
