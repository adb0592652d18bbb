"""``skewstream bench quality``: skewstream against river and MOA on the same streams, same order.

Each (stream, method) runs in a forked child, so its peak RSS is its own (the high-water mark is
reset at the start) and a JVM or a leak cannot leak into the next one. Every method scores each
event before learning it (prequential). Metrics come from the same functions for everyone:
PR-AUC, ROC-AUC, recall at a 1% alert budget, G-mean and kappa at each method's *own* decision
(skewstream: its class decision, and in a second row from the same run its alerts; peers:
P(y=1) >= 0.5, their predict), PR-AUC over the 20,000 events after each drift (recovery), events/s
of the loop, peak RSS. Ranks: 1 = best on a stream; the mean rank row averages them over the streams.
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream.bench.peers import Peer, capymoa_available, moa_peers, river_peers
from stream.bench.procstat import status_mb
from stream.bench.streams import SEEDLESS, BenchStream, from_file, suite
from stream.quality import Confusion, average_precision, recall_at_budget, roc_auc

RECOVERY = 20_000
RANKED = ("pr_auc", "roc_auc", "gmean", "kappa", "recall_at_1pct", "recovery_pr_auc")
# Scores, and decisions by the name a row of them takes after the method's ("": the method's own).
Decisions = dict[str, np.ndarray]
Scorer = Callable[[BenchStream], tuple[np.ndarray, Decisions]]
ALERTS_ROW = ", alerts at a 1% budget"  # skewstream's second row: the operator's queue, not the class


def skewstream_method(decisions: dict[str, str] | None = None, **overrides: Any) -> Scorer:
    """``skewstream replay`` of the stream as a JSONL file with these settings overrides; its rows'
    decisions are these fields of the score records (by default the alert)."""
    fields = decisions or {"": "alert"}

    def run(stream: BenchStream) -> tuple[np.ndarray, Decisions]:
        from stream.app import ReplayOptions, replay
        from stream.config import load_settings

        settings = load_settings(None, **overrides)
        with tempfile.TemporaryDirectory() as tmp:
            data, out = Path(tmp) / "stream.jsonl", Path(tmp) / "scores.jsonl"
            stream.write_jsonl(data)
            replay(settings, ReplayOptions(data, out=out))
            rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        if [r["id"] for r in rows] != [f"e{i:08d}" for i in range(stream.y.shape[0])]:
            raise AssertionError(f"{stream.name}: skewstream did not score every event exactly once, in order")
        scores = np.array([r["score"] for r in rows])
        return scores, {row: np.array([r[field] for r in rows], dtype=bool) for row, field in fields.items()}

    return run


def _peer(peer: Peer) -> Scorer:
    def run(stream: BenchStream) -> tuple[np.ndarray, Decisions]:
        scores = peer(stream)
        return scores, {"": scores >= 0.5}

    return run


def methods(peers: list[str] | None) -> dict[str, Scorer]:
    """skewstream's default, then every peer (MOA ones with capymoa)."""
    # Its class decision is the peers' predict (a balanced cut: the best G-mean on recent labels);
    # its alerts, the same run's second row, are the operator's queue, bounded by the 1% budget.
    found: dict[str, Scorer] = {"skewstream (default)": skewstream_method({"": "predicted", ALERTS_ROW: "alert"})}
    available = {**river_peers(), **(moa_peers() if capymoa_available() else {})}
    for name, peer in available.items():
        if peers is None or any(p.lower() in name.lower() for p in peers):
            found[name] = _peer(peer)
    return found


# Each changes one thing of the default pipeline (the sampler's keep rate is the same for vq and random).
ABLATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "default (VQ sampling with density correction, reweighting, class-aware drift, budget threshold)": {},
    "no resampling": {"sampler": {"enabled": False}},
    "random undersampling, same keep rate": {"sampler": {"mode": "random"}},
    "VQ sampling without density correction": {"sampler": {"density_correction": False}},
    # Thinning for real (the 0.8 floor keeps most of the majority): both corrected, then VQ uncorrected.
    "VQ sampling, keep-rate floor 0.3": {"sampler": {"min_keep_rate": 0.3}},
    "random undersampling, floor 0.3": {"sampler": {"min_keep_rate": 0.3, "mode": "random"}},
    "VQ sampling, floor 0.3, no density correction": {"sampler": {"min_keep_rate": 0.3, "density_correction": False}},
    "reweighting off": {"weighting": {"enabled": False}},
    "drift on the overall error": {"model": {"drift_scope": "overall"}},
    "no drift handling": {"model": {"drift": "none"}},
    "threshold: best G-mean": {"threshold": {"mode": "gmean"}},
    "event by event (micro-batches of 1)": {"model": {"micro_batch": 1}},
}


def ablations() -> dict[str, Scorer]:
    return {f"skewstream {name}": skewstream_method(**overrides) for name, overrides in ABLATIONS.items()}


@dataclass
class Outcome:
    stream: str
    method: str
    metrics: dict[str, float]


def _child(scorer: Scorer, stream: BenchStream, conn: Any) -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark to now
    except OSError:
        pass
    try:
        started = time.perf_counter()
        scores, decisions = scorer(stream)
        conn.send((scores, decisions, time.perf_counter() - started, status_mb("VmHWM"), None))
    except Exception as exc:  # reported as the method's failure on this stream, not a crash of the bench
        conn.send((None, None, 0.0, 0.0, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def measure(scorer: Scorer, stream: BenchStream) -> dict[str, dict[str, float]]:
    """The metrics of each of the scorer's rows (by the name's ending; "" the method's own)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(scorer, stream, child))
    process.start()
    child.close()
    scores, decisions, seconds, peak_mb, error = parent.recv()
    process.join()
    if error is not None:
        raise RuntimeError(error)
    return {row: score_metrics(stream, scores, decided, seconds, peak_mb) for row, decided in decisions.items()}


def score_metrics(stream: BenchStream, scores: np.ndarray, decisions: np.ndarray, seconds: float, peak_mb: float) -> dict[str, float]:
    y = stream.y
    rates = Confusion.of(y, decisions).rates()
    recovery = [average_precision(scores[d : d + RECOVERY], y[d : d + RECOVERY]) for d in stream.drifts if d < y.shape[0]]
    return {
        "pr_auc": average_precision(scores, y),
        "roc_auc": roc_auc(scores, y),
        "gmean": rates["gmean"],
        "kappa": rates["kappa"],
        "recall_at_1pct": recall_at_budget(scores, y, 0.01),
        "recovery_pr_auc": float(np.mean(recovery)) if recovery else math.nan,
        "events_per_s": y.shape[0] / seconds if seconds else math.nan,
        "peak_rss_mb": peak_mb,
    }


def mean_ranks(outcomes: list[Outcome], primary: str = "skewstream (default)") -> dict[str, dict[str, float]]:
    """Per method and metric, the mean over streams of its rank (1 = best; ties share the mean rank).

    Another skewstream row next to ``primary`` (the same model deciding another way) is ranked
    against the peers alone, in ``primary``'s place: two rows of one system must not push the peers
    down a rank each.
    """
    methods = {o.method for o in outcomes}
    variants = {m for m in methods if m.startswith("skewstream") and m != primary} if primary in methods else set()
    base = [o for o in outcomes if o.method not in variants]
    ranks = _mean_ranks(base)
    for variant in variants:
        ranks[variant] = _mean_ranks([o for o in base if o.method != primary] + [o for o in outcomes if o.method == variant])[variant]
    return ranks


def _mean_ranks(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    ranks: dict[str, dict[str, list[float]]] = {}
    for metric in RANKED:
        for stream in sorted({o.stream for o in outcomes}):
            rows = [o for o in outcomes if o.stream == stream and not math.isnan(o.metrics[metric])]
            values = np.array([-o.metrics[metric] for o in rows])
            order = _tied_ranks(values)
            for o, rank in zip(rows, order):
                ranks.setdefault(o.method, {}).setdefault(metric, []).append(float(rank))
    return {m: {k: float(np.mean(v)) for k, v in per.items()} for m, per in ranks.items()}


def _tied_ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tie = values == v
        ranks[tie] = ranks[tie].mean()
    return ranks


def markdown(outcomes: list[Outcome], ranks: dict[str, dict[str, float]], streams: dict[str, BenchStream]) -> list[str]:
    lines = []
    header = "| method | PR-AUC | ROC-AUC | G-mean | kappa | recall@1% | PR-AUC after drift | events/s | peak RSS MB |"
    for name, stream in streams.items():
        lines += ["", f"**{name}**: {stream.description}; {stream.y.shape[0]:,} events, {int(stream.y.sum()):,} positives", "", header, "|---|---|---|---|---|---|---|---|---|"]
        for o in (o for o in outcomes if o.stream == name):
            m = o.metrics
            lines.append(
                f"| {o.method} | {m['pr_auc']:.4f} | {m['roc_auc']:.4f} | {m['gmean']:.4f} | {m['kappa']:.4f} "
                f"| {m['recall_at_1pct']:.4f} | {_fmt(m['recovery_pr_auc'])} | {m['events_per_s']:,.0f} | {m['peak_rss_mb']:,.0f} |"
            )
    lines += ["", "**Mean rank over the streams** (1 = best)", "", "| method | " + " | ".join(RANKED) + " |", "|---|" + "---|" * len(RANKED)]
    for method, per in sorted(ranks.items(), key=lambda kv: kv[1].get("pr_auc", math.inf)):
        lines.append(f"| {method} | " + " | ".join(_fmt(per.get(k, math.nan), 2) for k in RANKED) + " |")
    return lines


def seed_summary(outcomes: list[Outcome], seeds: list[int]) -> list[str]:
    """PR-AUC per suite stream and method: the mean over the seeds, and their range."""
    names = list(dict.fromkeys(o.stream.rsplit("@", 1)[0] for o in outcomes))
    methods = list(dict.fromkeys(o.method for o in outcomes))
    lines = ["", f"**PR-AUC, mean over seeds {', '.join(map(str, seeds))}** (min-max)", "", "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method in methods:
        cells = []
        for name in names:
            values = [o.metrics["pr_auc"] for o in outcomes if o.method == method and o.stream.rsplit("@", 1)[0] == name]
            cells.append(f"{np.mean(values):.3f} ({min(values):.2f}-{max(values):.2f})" if values else "n/a")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _fmt(value: float, digits: int = 4) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def plot(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    streams = sorted({o.stream for o in outcomes})
    names = list(dict.fromkeys(o.method for o in outcomes))
    grid = np.full((len(names), len(streams)), np.nan)
    for o in outcomes:
        grid[names.index(o.method), streams.index(o.stream)] = o.metrics["pr_auc"]
    fig, ax = plt.subplots(figsize=(1.1 * len(streams) + 4, 0.45 * len(names) + 2))
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(streams)), streams, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black", fontsize=8)
    fig.colorbar(image, label="prequential PR-AUC")
    ax.set_title("PR-AUC by stream and method")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(
    events: int, seeds: list[int], stream_names: list[str] | None, files: list[Path], peers: list[str] | None,
    out: Path, ablate: bool = False,
) -> int:
    """Every method on every stream; with several ``seeds`` the suite is drawn once per seed (the
    streams are named ``name@seed``; real data, the same for every seed, runs once) and the mean
    ranks are over all of them."""
    known = sorted(suite(events, seeds[0]))
    unknown = set(stream_names or []) - set(known)
    if unknown:
        raise ValueError(f"--streams: unknown {sorted(unknown)}; known: {known}")
    streams: dict[str, BenchStream] = {}
    for seed in seeds:
        for name, make in suite(events, seed).items():
            if (stream_names is None or name in stream_names) and (seed == seeds[0] or name not in SEEDLESS):
                streams[name if len(seeds) == 1 or name in SEEDLESS else f"{name}@{seed}"] = make()
    streams.update({f.stem: from_file(f) for f in files})
    outcomes: list[Outcome] = []
    scorers = ablations() if ablate else methods(peers)
    for name, stream in streams.items():
        for method, scorer in scorers.items():
            try:
                rows = measure(scorer, stream)
            except RuntimeError as exc:
                print(f"{name} / {method}: failed: {exc}", flush=True)
                continue
            for row, metrics in rows.items():
                outcomes.append(Outcome(name, method + row, metrics))
                print(f"{name} / {method + row}: PR-AUC {metrics['pr_auc']:.4f}, G-mean {metrics['gmean']:.4f}, {metrics['events_per_s']:,.0f} ev/s", flush=True)
    ranks = mean_ranks(outcomes)
    out.mkdir(parents=True, exist_ok=True)
    lines = markdown(outcomes, ranks, streams)
    if len(seeds) > 1:
        lines += seed_summary(outcomes, seeds)
    stem = "ablations" if ablate else "quality"
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    (out / f"{stem}.json").write_bytes(orjson.dumps({"outcomes": [o.__dict__ for o in outcomes], "mean_ranks": ranks}, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    plot(outcomes, out / f"{stem}.png")
    print("\n".join(lines))
    print(f"\nwrote {out / stem}.md, .json, .png")
    return 0
