"""Where a replay's time goes: each stage's methods wrapped with a timer for one run.

The wrapping costs a few hundred nanoseconds per call; the stage shares are what to read, the
run's total speed comes from an unwrapped run (``bench speed``).
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stream.anomaly import AnomalyScorer
from stream.app import ReplayOptions, replay
from stream.config import Settings
from stream.events import Decoder
from stream.features import FeatureSpace
from stream.loop import Runner
from stream.sampling import VQSampler
from stream.selection import ModelSet
from stream.weighting import ClassWeights

# stage -> the (class, method) pairs that make it up
STAGES: dict[str, list[tuple[type, str]]] = {
    "decode": [(Decoder, "decode_many"), (Decoder, "decode_block")],
    "vectorise": [(FeatureSpace, "vectors"), (FeatureSpace, "rows")],
    "score (model)": [(ModelSet, "score_many")],
    "anomaly (score + learn)": [(AnomalyScorer, "score_many"), (AnomalyScorer, "learn_many"), (AnomalyScorer, "flush")],
    "sample + class weights": [(VQSampler, "weight_many"), (ClassWeights, "weigh_many")],
    "drift + candidates' ranking": [(ModelSet, "observe"), (ModelSet, "observe_many")],
    "learn (model)": [(ModelSet, "learn_many"), (ModelSet, "flush")],
}


@contextmanager
def _timed(totals: dict[str, float]) -> Iterator[None]:
    saved = []
    for stage, methods in STAGES.items():
        for cls, name in methods:
            original = getattr(cls, name)
            saved.append((cls, name, original))
            setattr(cls, name, _timer(original, stage, totals))
    try:
        yield
    finally:
        for cls, name, original in saved:
            setattr(cls, name, original)


def _timer(method: Callable[..., Any], stage: str, totals: dict[str, float]) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            totals[stage] += time.perf_counter() - started

    return timed


def breakdown(path: Path, settings: Settings) -> tuple[dict[str, float], float, int]:
    """Seconds per stage (plus the sink and the rest), the total, and events scored."""
    totals = dict.fromkeys([*STAGES, "sink (scores file)"], 0.0)

    def wrap_sink(runner: Runner) -> None:
        sink = runner.ports.sink
        for name in ("write", "write_many"):
            setattr(sink, name, _timer(getattr(sink, name), "sink (scores file)", totals))
        run = runner.run

        def timed_run(stop: Any) -> None:  # the stages from here: the warm-up before is not the run
            for stage in totals:
                totals[stage] = 0.0
            run(stop)

        runner.run = timed_run  # type: ignore[method-assign]

    with tempfile.TemporaryDirectory() as tmp, _timed(totals):
        result = replay(settings, ReplayOptions(path, out=Path(tmp) / "scores.jsonl"), setup=wrap_sink)
    totals["rest (loop, labels, threshold, quality, I/O)"] = max(0.0, result.seconds - sum(totals.values()))
    return totals, result.seconds, int(result.pipeline.counts["scored"])


def table(path: Path, settings: Settings, label: str) -> list[str]:
    totals, seconds, events = breakdown(path, settings)
    lines = [f"stages of `skewstream replay`, {label}: {events:,} events in {seconds:.1f} s (timed run)",
             "| stage | seconds | share | µs per event |", "|---|---|---|---|"]  # fmt: skip
    for stage, spent in totals.items():
        lines.append(f"| {stage} | {spent:.2f} | {spent / seconds:.0%} | {1e6 * spent / events:.1f} |")
    return lines
