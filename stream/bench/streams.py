"""The benchmark suite: river's generators made imbalanced, with drifts and prior shifts; Shuttle.

A generator is made imbalanced by choosing each event's class first (positive with the target
rate of that moment) and then drawing from the generator until it yields that class: the class
conditionals P(x | y) stay the generator's, only the prior changes. A concept drift switches the
generator's concept at a position (abrupt) or blends the two over a window (gradual: the chance of
drawing from the new concept ramps linearly).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

Generator = Callable[[], Iterator[tuple[dict[str, Any], Any]]]


@dataclass
class BenchStream:
    name: str
    description: str
    x: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) int64, 1 = the rare class
    drifts: list[int] = field(default_factory=list)  # where a concept or prior changes

    @property
    def names(self) -> list[str]:
        return [f"f{j}" for j in range(self.x.shape[1])]

    def rows(self) -> Iterator[tuple[dict[str, float], int]]:
        names = self.names
        for row, y in zip(self.x.tolist(), self.y.tolist()):
            yield dict(zip(names, row)), int(y)

    def write_jsonl(self, path: Path) -> None:
        """The stream as skewstream reads it (ids e00000000..., event time = index)."""
        with open(path, "wb") as out:
            for i, (x, y) in enumerate(self.rows()):
                out.write(orjson.dumps({"id": f"e{i:08d}", "ts": float(i), "label": y, **x}) + b"\n")


def _numeric(x: dict[str, Any]) -> list[float]:
    return [float(v) for v in x.values()]


def imbalanced(
    before: Generator,
    after: Generator | None,
    n: int,
    rate: Callable[[int], float],
    change: int,
    width: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events: positive with ``rate(i)``; from ``after`` past ``change`` (ramping over ``width``)."""
    rng = np.random.default_rng(seed)
    sources = [before(), after() if after is not None else None]
    x, y = [], np.empty(n, dtype=np.int64)
    for i in range(n):
        share = 0.0 if after is None else float(np.clip((i - change) / max(width, 1) + (width <= 1), 0.0, 1.0))
        source = sources[1] if share > 0 and rng.random() < share else sources[0]
        want = int(rng.random() < rate(i))
        for features, label in source:  # type: ignore[union-attr]
            if int(label) == want:
                x.append(_numeric(features))
                break
        y[i] = want
    return np.asarray(x, dtype=np.float64), y


def _river(name: str, **kwargs: Any) -> Generator:
    def make() -> Iterator[tuple[dict[str, Any], Any]]:
        import river.datasets.synth as synth

        return iter(getattr(synth, name)(**kwargs))

    return make


def _shuttle(n: int) -> BenchStream:
    """river's bundled Shuttle (49,097 rows, about 1:13): class 1 is the rare class, in file order."""
    from river.datasets import Shuttle

    rows = list(itertools.islice(Shuttle(), n))
    x = np.array([_numeric(features) for features, _ in rows])
    y = np.array([int(label) for _, label in rows], dtype=np.int64)
    return BenchStream("shuttle", "river's bundled Shuttle (1:13, real data)", x, y)


SEEDLESS = {"shuttle"}  # suite streams that are the same whatever the seed (real data in file order)


def suite(n: int, seed: int = 7) -> dict[str, Callable[[], BenchStream]]:
    """Every stream of the suite by name, built lazily (``n`` events each; Shuttle has 49,097)."""
    half = n // 2
    gradual = max(n // 5, 1)

    def fixed(r: float) -> Callable[[int], float]:
        return lambda _: r

    def shifted(i: int) -> float:
        return 0.01 if i < half else 0.001

    specs: dict[str, tuple[str, Generator, Generator | None, Callable[[int], float], int, int, list[int]]] = {
        "sea-abrupt-1:100": ("SEA, concept 0 -> 3 at 50%, 1:100", _river("SEA", variant=0, seed=seed), _river("SEA", variant=3, seed=seed + 1), fixed(0.01), half, 1, [half]),
        "sea-abrupt-1:1000": ("SEA, concept 0 -> 3 at 50%, 1:1000", _river("SEA", variant=0, seed=seed), _river("SEA", variant=3, seed=seed + 1), fixed(0.001), half, 1, [half]),
        "agrawal-gradual-1:100": ("Agrawal, function 0 -> 2 over 40-60%, 1:100", _river("Agrawal", classification_function=0, seed=seed), _river("Agrawal", classification_function=2, seed=seed + 1), fixed(0.01), half - gradual // 2, gradual, [half - gradual // 2]),
        "agrawal-gradual-1:1000": ("Agrawal, function 0 -> 2 over 40-60%, 1:1000", _river("Agrawal", classification_function=0, seed=seed), _river("Agrawal", classification_function=2, seed=seed + 1), fixed(0.001), half - gradual // 2, gradual, [half - gradual // 2]),
        "hyperplane-incremental-1:100": ("Hyperplane, 10 features, 2 drifting (mag 0.001), 1:100", _river("Hyperplane", seed=seed, n_features=10, n_drift_features=2, mag_change=0.001), None, fixed(0.01), n, 1, []),
        "rbf-abrupt-1:100": ("RandomRBF, model 1 -> 2 at 50%, 10 features, 1:100", _river("RandomRBF", seed_model=seed, seed_sample=seed, n_features=10), _river("RandomRBF", seed_model=seed + 1, seed_sample=seed + 1, n_features=10), fixed(0.01), half, 1, [half]),
        "rbf-abrupt-1:1000": ("RandomRBF, model 1 -> 2 at 50%, 10 features, 1:1000", _river("RandomRBF", seed_model=seed, seed_sample=seed, n_features=10), _river("RandomRBF", seed_model=seed + 1, seed_sample=seed + 1, n_features=10), fixed(0.001), half, 1, [half]),
        "agrawal-prior-shift": ("Agrawal function 0, prior 1:100 -> 1:1000 at 50%", _river("Agrawal", classification_function=0, seed=seed), None, shifted, n, 1, [half]),
        "rbf-prior-shift": ("RandomRBF, prior 1:100 -> 1:1000 at 50%", _river("RandomRBF", seed_model=seed, seed_sample=seed, n_features=10), None, shifted, n, 1, [half]),
    }  # fmt: skip

    def build(name: str) -> Callable[[], BenchStream]:
        description, before, after, rate, change, width, drifts = specs[name]

        def make() -> BenchStream:
            x, y = imbalanced(before, after, n, rate, change, width, seed)
            return BenchStream(name, description, x, y, drifts)

        return make

    streams = {name: build(name) for name in specs}
    streams["shuttle"] = lambda: _shuttle(n)
    return streams


def from_file(path: Path, label_field: str = "label") -> BenchStream:
    """A user's JSON-lines file of labelled events (numeric fields are features, in first-row order)."""
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"--stream-file: {path} has no rows")
    names = [k for k, v in rows[0].items() if k not in ("id", "ts", label_field) and isinstance(v, int | float)]
    x = np.array([[float(r.get(k, 0.0) or 0.0) for k in names] for r in rows])
    y = np.array([int(r[label_field]) for r in rows], dtype=np.int64)
    return BenchStream(path.stem, f"file {path.name}", x, y)
