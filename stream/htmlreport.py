"""``skewstream report SCORES --labels F --out report.html``: a page for people who would rather look.

Joins a scores file (the replay/serve output) with labels (any JSONL with id and label: the events
file itself, or a labels file) and draws PR and ROC curves, rolling PR-AUC / recall / alert rate
over the stream with model changes marked, and score histograms by class, above a summary table.
The HTML embeds its PNGs (one self-contained file); the PNGs are also written beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from stream.quality import Confusion, average_precision, recall_at_budget, roc_auc


@dataclass
class Joined:
    score: np.ndarray  # labelled events only, in stream order
    label: np.ndarray
    alert: np.ndarray
    predicted: np.ndarray | None  # the class decisions (None: a scores file from before they existed)
    position: np.ndarray  # index of each labelled event among all scored events
    alerts_all: np.ndarray  # every scored event's alert flag
    changes: list[int]  # scored-event indices where model_version changed


def load(scores_path: Path, labels_path: Path | None, label_field: str = "label", id_field: str = "id") -> Joined:
    labels: dict[str, int] = {}
    if labels_path is not None:
        for line in labels_path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            value = record.get(label_field) if isinstance(record, dict) else None
            if value in (0, 1, True, False):
                labels[str(record.get(id_field))] = int(value)
    rows = [orjson.loads(line) for line in scores_path.read_bytes().splitlines() if line.strip()]
    alerts_all = np.array([bool(r["alert"]) for r in rows])
    versions = [r["model_version"] for r in rows]
    changes = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
    keep = [i for i, r in enumerate(rows) if str(r["id"]) in labels]
    decided = all("predicted" in r for r in rows)
    return Joined(
        score=np.array([rows[i]["score"] for i in keep], dtype=float),
        label=np.array([labels[str(rows[i]["id"])] for i in keep], dtype=np.int64),
        alert=alerts_all[keep] if keep else np.zeros(0, dtype=bool),
        predicted=np.array([bool(rows[i]["predicted"]) for i in keep], dtype=bool) if decided else None,
        position=np.array(keep, dtype=np.int64),
        alerts_all=alerts_all,
        changes=changes,
    )


def summary(data: Joined, budget: float) -> list[tuple[str, str]]:
    rates = Confusion.of(data.label, data.alert).rates()
    rows = [
        ("events scored", f"{data.alerts_all.shape[0]:,}"),
        ("labelled / positives", f"{data.label.shape[0]:,} / {int(data.label.sum()):,}"),
        ("PR-AUC", _f(average_precision(data.score, data.label))),
        ("ROC-AUC", _f(roc_auc(data.score, data.label))),
        (f"recall in the top {budget:.1%} of scores", _f(recall_at_budget(data.score, data.label, budget))),
        ("alerts: precision / recall", f"{_f(rates['precision'])} / {_f(rates['recall'])}"),
        ("alerts: G-mean / kappa", f"{_f(rates['gmean'])} / {_f(rates['kappa'])}"),
        ("alert rate (all scored events)", _f(float(data.alerts_all.mean()) if data.alerts_all.size else math.nan)),
    ]
    if data.predicted is not None:
        decided = Confusion.of(data.label, data.predicted).rates()
        rows += [
            ("class decision: precision / recall", f"{_f(decided['precision'])} / {_f(decided['recall'])}"),
            ("class decision: G-mean / kappa", f"{_f(decided['gmean'])} / {_f(decided['kappa'])}"),
        ]
    rows += [
        ("model changes (drift or champion switch)", f"{len(data.changes):,}"),
    ]
    return rows


def _f(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _curves(score: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="stable")
    y = label[order]
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    pos, neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    return tp / pos, tp / np.maximum(tp + fp, 1), fp / neg  # recall (= TPR), precision, FPR


def figures(data: Joined, window: int) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    recall, precision, fpr = _curves(data.score, data.label)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(recall, precision)
    left.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    right.plot(fpr, recall)
    right.plot([0, 1], [0, 1], linestyle=":", color="grey")
    right.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    out["curves"] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(10, 4))
    xs, ap, rec, rate = _rolling(data, window)
    ax.plot(xs, ap, label=f"PR-AUC (last {window:,} labelled)")
    ax.plot(xs, rec, label="recall of alerts")
    ax.plot(xs, rate, label="alert rate")
    for change in data.changes[:200]:
        ax.axvline(change, color="grey", linestyle="--", linewidth=0.7)
    ax.set(xlabel="events scored (dashed: model changed)", ylim=(0, 1), title="Over the stream")
    ax.legend(loc="upper right")
    out["rolling"] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(10, 3.5))
    bins = np.linspace(0, 1, 51)
    for y, name in ((0, "negatives"), (1, "positives")):
        ax.hist(data.score[data.label == y], bins=bins.tolist(), alpha=0.6, label=name, density=True)
    ax.set(yscale="log", xlabel="score", ylabel="density", title="Scores by class")
    ax.legend()
    out["histogram"] = _png(fig, plt)
    return out


def _rolling(data: Joined, window: int) -> tuple[list[int], list[float], list[float], list[float]]:
    xs: list[int] = []
    ap: list[float] = []
    rec: list[float] = []
    rate: list[float] = []
    n = data.label.shape[0]
    step = max(1, window // 4)
    for end in range(min(window, n), n + 1, step):
        s, y, a = data.score[end - window : end], data.label[end - window : end], data.alert[end - window : end]
        first, last = data.position[max(0, end - window)], data.position[end - 1]
        xs.append(int(last))
        ap.append(average_precision(s, y))
        rec.append(float(a[y == 1].mean()) if (y == 1).any() else math.nan)
        rate.append(float(data.alerts_all[first : last + 1].mean()))
    return xs, ap, rec, rate


def _png(fig: object, plt: object) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(buffer, format="png", dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    return buffer.getvalue()


def write(scores: Path, labels: Path | None, out: Path, budget: float = 0.01, window: int = 5_000) -> list[Path]:
    """Write the HTML (and its PNGs beside it); returns every file written."""
    data = load(scores, labels)
    if data.label.shape[0] == 0:
        raise ValueError(f"report: no scored event of {scores} has a label (give --labels with ids and labels)")
    window = min(window, data.label.shape[0])
    images = figures(data, window)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in images.items():
        path = out.with_name(f"{out.stem}-{name}.png")
        path.write_bytes(png)
        written.append(path)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary(data, budget))
    imgs = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for name, png in images.items()
    )
    out.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>skewstream report</title>"
        "<style>body{font-family:sans-serif;max-width:1040px;margin:2em auto}"
        "table{border-collapse:collapse}th,td{padding:4px 12px;border-bottom:1px solid #ddd;text-align:left}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>skewstream report</h1><p>{html.escape(str(scores))}</p><table>{rows}</table>{imgs}</body></html>"
    )
    return [out, *written]
