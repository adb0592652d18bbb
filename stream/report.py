"""The end-of-run report: a table of what happened and a plot of quality over the stream."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from stream.pipeline import Pipeline


def _fmt(value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4f}"
    return f"{int(value):,}"


def summary_rows(pipeline: Pipeline, seconds: float) -> list[tuple[str, str]]:
    snap = pipeline.snapshot()
    counts, run = snap["counts"], snap["run"]
    rows = [
        ("events scored", _fmt(counts["scored"])),
        ("events/s", f"{counts['scored'] / seconds:,.0f}" if seconds > 0 else "-"),
        ("labelled (neg / pos)", "{:,} / {:,}".format(*snap["labels_by_class"])),
        ("learning steps (kept by sampler)", _fmt(counts["learned"])),
        ("alerts", _fmt(counts["alerts"])),
    ]
    for name in ("pr_auc", "roc_auc", "recall_at_budget"):
        rows.append((f"{name} (prequential, whole run)", _fmt(run[name])))
    for name in ("gmean", "kappa", "precision", "recall"):  # of the alerts, then of the class decisions
        rows.append((f"{name}: alerts / class decision", f"{_fmt(run[name])} / {_fmt(run[f'class_{name}'])}"))
    rows.append(("pr_auc (last window)", _fmt(snap["rolling"]["pr_auc"])))
    rows.append(("drifts (positive / negative class)", "{positive} / {negative}".format(**snap["drifts"])))
    rows.append(("drift swaps undone", str(snap["drift_reverts"])))
    rows.append(("model version", str(snap["model_version"])))
    if len(snap["candidates"]) > 1:
        for candidate in snap["candidates"]:
            metric = next(k for k in candidate if k not in ("name", "champion"))
            mark = " (serving)" if candidate["champion"] else ""
            rows.append((f"candidate {candidate['name']}{mark}: windowed {metric}", _fmt(candidate[metric])))
        switches = pipeline.model.switch_log
        rows.append(("champion changes", f"{snap['model_switches']}" + (f"  last: {switches[-1][1]} -> {switches[-1][2]}" if switches else "")))
    balanced = snap["class_threshold"]
    rows.append(("threshold: alerts / class decision (final)", f"{_fmt(snap['threshold'])} / {'-' if balanced is None else _fmt(balanced)}"))
    rows.append(("pending labels / expired", f"{snap['label_store_size']:,} / {snap['label_store_expired']:,}"))
    rows.append(("features imputed / unknown fields", f"{snap['features_imputed']:,} / {snap['features_unknown']:,}"))
    bad = {k: v for k, v in snap["dead_letters"].items() if v}
    rows.append(("dead letters", f"{sum(bad.values()):,}" + (f"  {bad}" if bad else "")))
    return rows


def print_report(pipeline: Pipeline, seconds: float, console: Console | None = None) -> None:
    table = Table(title="skewstream: end of run", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for what, value in summary_rows(pipeline, seconds):
        table.add_row(what, value)
    (console or Console()).print(table)


def plot(pipeline: Pipeline, path: Path) -> Path:
    """Rolling PR-AUC, recall and alert rate over the stream, drifts as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: list[Any] = pipeline.history.points
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    if points:
        xs = [p[0] for p in points]
        top.plot(xs, [p[1] for p in points], label="rolling PR-AUC")
        top.plot(xs, [p[2] for p in points], label="rolling recall (alerts)")
        bottom.plot(xs, [p[3] for p in points], label="alert rate", color="tab:red")
        top.legend(loc="lower left")
        bottom.legend(loc="upper left")
    else:
        top.text(0.5, 0.5, "too few labelled events for rolling metrics", ha="center", transform=top.transAxes)
    for scored, _version in pipeline.history.drifts:
        for ax in (top, bottom):
            ax.axvline(scored, color="grey", linestyle="--", linewidth=0.8)
    top.set_ylim(0, 1)
    top.set_ylabel("prequential")
    bottom.set_ylabel("share of events")
    bottom.set_xlabel("events scored (dashed: drift detected, model swapped)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
