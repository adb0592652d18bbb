"""``skewstream bench memory``: resident memory of a long replay, every million events.

The state is bounded by design (trees stop at ``model.max_leaves``, the label store, the id window
and the ranking windows have fixed sizes), so RSS must flatten out. The stream is the synthetic
abrupt-drift profile in chunks of a million events, each with new concepts (a drift at every chunk
boundary keeps the drift handling and its background models busy), written to a temporary file
and replayed through the full path.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson

from stream.app import ReplayOptions, replay
from stream.config import load_settings
from stream.loop import Runner
from stream.pipeline import Pipeline
from stream.synth import ABRUPT, feature_names, generate

CHUNK = 1_000_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_chunks(path: Path, events: int, seed: int, chunk: int) -> None:
    names = feature_names(ABRUPT.dim)
    with open(path, "wb") as out:
        for c, start in enumerate(range(0, events, chunk)):
            n = min(chunk, events - start)
            stream = generate(replace(ABRUPT, n=n, seed=seed + c))
            x, y = np.round(stream.x, 5).tolist(), stream.y.tolist()
            for i in range(n):
                record = {"id": f"c{c:03d}e{i:07d}", "ts": float(start + i), "label": int(y[i]), **dict(zip(names, x[i]))}
                out.write(orjson.dumps(record) + b"\n")


def main(events: int, seed: int, chunk: int = CHUNK) -> int:
    rows: list[tuple[int, float, float]] = []  # events, RSS MB, events/s since the previous row
    mark = {"next": min(chunk, events), "t": time.perf_counter(), "n": 0}

    def sample(runner: Runner | Pipeline) -> None:
        pipeline = runner.pipeline if isinstance(runner, Runner) else runner
        scored = pipeline.counts["scored"]
        if scored >= mark["next"] and (not rows or scored > rows[-1][0]):
            now = time.perf_counter()
            rows.append((scored, rss_mb(), (scored - mark["n"]) / (now - mark["t"])))
            print(f"  {scored:,} events: RSS {rows[-1][1]:.0f} MB", flush=True)
            mark.update(next=mark["next"] + chunk, t=now, n=scored)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        write_chunks(path, events, seed, chunk)
        print(f"replaying {events:,} events (default settings), RSS before: {rss_mb():.0f} MB", flush=True)
        mark["t"] = time.perf_counter()
        result = replay(load_settings(None), ReplayOptions(path), progress=sample)
        mark["next"] = 0  # the end of the stream is a row too
        sample(result.pipeline)
    print("| events | RSS MB | events/s (last million) |\n|---|---|---|")
    for scored, rss, rate in rows:
        print(f"| {scored:,} | {rss:.0f} | {rate:,.0f} |")
    first = next((r for r in rows if r[0] >= chunk), rows[0])
    print(f"RSS at {first[0]:,}: {first[1]:.0f} MB; at {rows[-1][0]:,}: {rows[-1][1]:.0f} MB ({rows[-1][1] / first[1] - 1:+.1%})")
    return 0
