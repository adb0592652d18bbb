"""A seeded, fraud-like demo stream: rare positives, drifts, delayed labels.

Majority events come from a few Gaussian clusters plus a rare sub-cluster of "hard negatives"
next to the fraud region; positives come from two clusters of their own. The stream has
(by default) an abrupt drift (the fraud clusters move), a gradual drift (the majority clusters
move, events drawn from the new concept with a growing probability) and a class-prior shift (the
positive rate doubles). Part of the labels are delayed: the event carries ``label: null`` and a
label-only record follows later in the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson


@dataclass(frozen=True)
class StreamSpec:
    n: int = 200_000
    dim: int = 10
    positive_rate: float = 0.004
    abrupt_at: float | None = 0.4  # share of the stream where the fraud clusters jump
    gradual: tuple[float, float] | None = (0.6, 0.75)  # majority moves over this span
    prior_shift_at: float | None = 0.8  # positive rate doubles from here
    delayed_share: float = 0.3
    max_delay: int = 2_000  # events between a delayed event and its label
    seed: int = 7


DEMO = StreamSpec()
ABRUPT = StreamSpec(positive_rate=0.01, abrupt_at=0.5, gradual=None, prior_shift_at=None)


@dataclass(frozen=True)
class Stream:
    x: np.ndarray
    y: np.ndarray
    ts: np.ndarray
    drifts: list[int]


def _centres(rng: np.random.Generator, k: int, dim: int, scale: float) -> np.ndarray:
    return rng.normal(0.0, scale, size=(k, dim))


def generate(spec: StreamSpec) -> Stream:
    """Draw the whole stream as arrays (fast: no per-event Python)."""
    rng = np.random.default_rng(spec.seed)
    n, d = spec.n, spec.dim
    t = np.arange(n) / n
    rate = np.full(n, spec.positive_rate)
    if spec.prior_shift_at is not None:
        rate[t >= spec.prior_shift_at] *= 2.0
    y = (rng.random(n) < rate).astype(np.int8)

    maj_old, maj_new = _centres(rng, 4, d, 2.0), _centres(rng, 4, d, 2.0)
    fraud_old, fraud_new = _centres(rng, 2, d, 1.5), _centres(rng, 2, d, 1.5)
    new_majority = np.zeros(n, dtype=bool)
    if spec.gradual is not None:
        start, end = spec.gradual
        share = np.clip((t - start) / (end - start), 0.0, 1.0)
        new_majority = rng.random(n) < share
    new_fraud = t >= spec.abrupt_at if spec.abrupt_at is not None else np.zeros(n, dtype=bool)

    x = np.empty((n, d))
    neg, pos = y == 0, y == 1
    cluster = rng.integers(0, 4, size=n)
    centres = np.where(new_majority[:, None], maj_new[cluster], maj_old[cluster])
    x[neg] = centres[neg] + rng.normal(0.0, 1.0, size=(int(neg.sum()), d))
    fraud_cluster = rng.integers(0, 2, size=n)
    fraud_centres = np.where(new_fraud[:, None], fraud_new[fraud_cluster], fraud_old[fraud_cluster])
    x[pos] = fraud_centres[pos] + rng.normal(0.0, 0.8, size=(int(pos.sum()), d))
    hard = neg & (rng.random(n) < 0.02)  # hard negatives right next to the fraud clusters
    x[hard] = fraud_centres[hard] + rng.normal(0.0, 1.3, size=(int(hard.sum()), d))
    x[:, -1] = np.exp(x[:, -1] / 2.0)  # one skewed, amount-like feature

    ts = 1_700_000_000.0 + np.cumsum(rng.exponential(0.05, size=n))
    drifts = []
    for at in (spec.abrupt_at, spec.gradual[0] if spec.gradual else None, spec.prior_shift_at):
        if at is not None:
            drifts.append(int(at * n))
    return Stream(x, y, ts, sorted(drifts))


def feature_names(dim: int) -> list[str]:
    return [f"f{j}" for j in range(dim)]


def event_record(stream: Stream, i: int, id_prefix: str = "e", labelled: bool = True) -> dict[str, object]:
    """Event ``i`` as the flat object skewstream reads (full-precision floats; ``labelled=False``: label null)."""
    record: dict[str, object] = {
        "id": f"{id_prefix}{i:08d}",
        "ts": float(stream.ts[i]),
        "label": int(stream.y[i]) if labelled else None,
    }
    record.update(zip(feature_names(stream.x.shape[1]), stream.x[i].tolist()))
    return record


def write_jsonl(spec: StreamSpec, path: Path) -> Stream:
    """Write the stream as JSONL with delayed labels as label-only records; returns the arrays."""
    stream = generate(spec)
    rng = np.random.default_rng(spec.seed + 1)
    delayed = rng.random(spec.n) < spec.delayed_share
    due = np.arange(spec.n) + rng.integers(1, spec.max_delay + 1, size=spec.n)
    waiting: dict[int, list[int]] = {}
    names = feature_names(spec.dim)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as out:
        for i in range(spec.n):
            for j in waiting.pop(i, ()):
                out.write(orjson.dumps({"id": f"e{j:08d}", "label": int(stream.y[j])}) + b"\n")
            record: dict[str, object] = {"id": f"e{i:08d}", "ts": round(float(stream.ts[i]), 3)}
            record["label"] = None if delayed[i] else int(stream.y[i])
            record.update(zip(names, np.round(stream.x[i], 5).tolist()))
            out.write(orjson.dumps(record) + b"\n")
            if delayed[i]:
                waiting.setdefault(int(due[i]), []).append(i)
        for j in sorted(k for ks in waiting.values() for k in ks):
            out.write(orjson.dumps({"id": f"e{j:08d}", "label": int(stream.y[j])}) + b"\n")
    tmp.replace(path)
    return stream
