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

import orjson

from stream.app import ReplayOptions, replay
from stream.bench.procstat import status_mb
from stream.config import load_settings
from stream.pipeline import Pipeline
from stream.synth import ABRUPT, event_record, generate

CHUNK = 1_000_000


def write_chunks(path: Path, events: int, seed: int, chunk: int) -> None:
    with open(path, "wb") as out:
        for c, start in enumerate(range(0, events, chunk)):
            stream = generate(replace(ABRUPT, n=min(chunk, events - start), seed=seed + c))
            for i in range(stream.y.shape[0]):
                record = event_record(stream, i, id_prefix=f"c{c:03d}e")
                record["ts"] = float(start + i)  # event time keeps going across chunks
                out.write(orjson.dumps(record) + b"\n")


def main(events: int, seed: int, chunk: int = CHUNK) -> int:
    rows: list[tuple[int, float, float]] = []  # events, RSS MB, events/s since the previous row
    last = {"t": time.perf_counter(), "n": 0}

    def sample(pipeline: Pipeline, force: bool = False) -> None:
        scored = pipeline.counts["scored"]
        if scored - last["n"] >= chunk or (force and scored > last["n"]):
            now = time.perf_counter()
            rows.append((scored, status_mb("VmRSS"), (scored - last["n"]) / (now - last["t"])))
            print(f"  {scored:,} events: RSS {rows[-1][1]:.0f} MB", flush=True)
            last.update(t=now, n=scored)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.jsonl"
        write_chunks(path, events, seed, chunk)
        print(f"replaying {events:,} events (default settings), RSS before: {status_mb('VmRSS'):.0f} MB", flush=True)
        last["t"] = time.perf_counter()
        result = replay(load_settings(None), ReplayOptions(path), progress=lambda runner: sample(runner.pipeline))
        sample(result.pipeline, force=True)  # the end of the stream is a row too
    print("| events | RSS MB | events/s (last million) |\n|---|---|---|")
    for scored, rss, rate in rows:
        print(f"| {scored:,} | {rss:.0f} | {rate:,.0f} |")
    first = next((r for r in rows if r[0] >= chunk), rows[0])
    print(f"RSS at {first[0]:,}: {first[1]:.0f} MB; at {rows[-1][0]:,}: {rows[-1][1]:.0f} MB ({rows[-1][1] / first[1] - 1:+.1%})")
    return 0
