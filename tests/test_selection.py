"""Champion/challenger: the contest follows the concept, and does not flap between equals."""

from __future__ import annotations

import numpy as np

from stream.config import ModelSettings, SelectionSettings
from stream.quality import average_precision
from stream.selection import ModelSet


def stream(n: int, seed: int, tree_from: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Positives ~4%: an oblique linear cut; from ``tree_from`` on, an XOR of two features instead."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    linear = x @ np.array([0.8, -0.6, 0.5, 0.4, -0.3, 0.2]) > 2.2
    xor = ((x[:, 0] > 1.0) & (x[:, 1] < -1.0)) | ((x[:, 0] < -1.0) & (x[:, 1] > 1.0))
    y = linear.copy()
    if tree_from is not None:
        y[tree_from:] = xor[tree_from:]
    return x, y.astype(int)


def run(models: ModelSet, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    served, each, champions = [], [], []
    for row, label in zip(x, y):
        p, scores = models.score(row)
        served.append(p)
        each.append(scores)
        models.observe(row, int(label), scores)
        models.learn(row, int(label), 5.0 if label else 1.0)
        champions.append(models.champion)
    return np.array(served), np.array(each), champions


def model_set(candidates: list[str], start: str) -> ModelSet:
    selection = SelectionSettings(candidates=candidates, window=4000, min_positives=20, margin=0.02)  # type: ignore[arg-type]
    return ModelSet(ModelSettings(kind=start, drift="none", grace_period=50), selection, budget=0.01)  # type: ignore[arg-type]


def test_champion_moves_from_linear_to_tree_after_the_concept_changes() -> None:
    x, y = stream(24_000, seed=1, tree_from=12_000)
    models = model_set(["logreg", "hoeffding"], start="hoeffding")
    served, each, champions = run(models, x, y)
    names = models.names
    assert names[champions[11_999]] == "logreg"  # the linear half is won by the linear model
    assert names[champions[-1]] == "hoeffding"  # ... the tree half by the tree
    assert models.switches <= 3
    best_single = max(average_precision(each[:, i], y) for i in range(len(names)))
    assert average_precision(served, y) >= best_single - 0.03


def test_no_switch_between_equal_candidates_on_a_stationary_stream() -> None:
    x, y = stream(10_000, seed=2, tree_from=None)
    models = model_set(["logreg", "logreg"], start="logreg")
    _, _, champions = run(models, x, y)
    assert models.switches == 0 and set(champions) == {0}
