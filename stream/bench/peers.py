"""The peers of ``bench quality``: river learners and (optional extra ``peers``) MOA via capymoa.

Every peer is run in the same test-then-train loop over the same events: the score of an event is
P(y=1) *before* the event is learned. Trees get ``max_share_to_split=1.0``: river's default 0.99
never splits at a 1% minority, which would make a straw man of them. MOA's imbalance learners
have no Python class in capymoa: they are wrapped with its generic ``MOAClassifier`` on
``moa.classifiers.meta.imbalanced.*`` with 10 Hoeffding trees as base (their default, an ARF of 100
trees, is too slow to matter here). MOA runs in a per-event Python loop (one JPype crossing per
call), which is what its events/s measure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from stream.bench.streams import BenchStream


class Peer(Protocol):
    def __call__(self, stream: BenchStream) -> np.ndarray: ...


def _river_loop(make: Callable[[], Any]) -> Peer:
    def run(stream: BenchStream) -> np.ndarray:
        model = make()
        scores = np.empty(stream.y.shape[0])
        for i, (x, y) in enumerate(stream.rows()):
            scores[i] = model.predict_proba_one(x).get(1, 0.0)
            model.learn_one(x, y)
        return scores

    return run


def river_peers() -> dict[str, Peer]:
    from river import forest, imblearn, linear_model, preprocessing, tree

    def ht() -> Any:
        return tree.HoeffdingTreeClassifier(max_share_to_split=1.0)

    return {
        "river Scaler|LogReg": _river_loop(lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression()),
        "river HT": _river_loop(ht),
        "river HAT": _river_loop(lambda: tree.HoeffdingAdaptiveTreeClassifier(max_share_to_split=1.0, seed=1)),
        "river ARF": _river_loop(lambda: forest.ARFClassifier(n_models=10, max_share_to_split=1.0, seed=1)),
        "river RUS(HT)": _river_loop(lambda: imblearn.RandomUnderSampler(ht(), desired_dist={0: 0.5, 1: 0.5}, seed=1)),
        "river ROS(HT)": _river_loop(lambda: imblearn.RandomOverSampler(ht(), desired_dist={0: 0.5, 1: 0.5}, seed=1)),
    }


def capymoa_available() -> bool:
    """Without importing it: importing capymoa starts the JVM, which must happen in the child only."""
    import importlib.util

    return importlib.util.find_spec("capymoa") is not None


def _moa_loop(make: Callable[[Any], Any]) -> Peer:
    def run(stream: BenchStream) -> np.ndarray:
        # capymoa's dataset helpers create (and would download into) this folder: keep it out of the way.
        os.environ.setdefault("CAPYMOA_DATASETS_DIR", tempfile.mkdtemp(prefix="capymoa-"))
        from capymoa.core import LabeledInstance
        from capymoa.stream import Schema

        schema = Schema.from_custom([*stream.names, "class"], target="class", categories={"class": ["0", "1"]}, name=stream.name)
        learner = make(schema)
        scores = np.empty(stream.y.shape[0])
        for i in range(stream.y.shape[0]):
            instance = LabeledInstance.from_array(schema, stream.x[i], int(stream.y[i]))
            votes = learner.predict_proba(instance)
            total = float(np.sum(votes)) if votes is not None else 0.0
            scores[i] = float(votes[1]) / total if total > 0 else 0.0
            learner.train(instance)
        return scores

    return run


def moa_peers() -> dict[str, Peer]:
    """MOA learners through capymoa (needs the ``peers`` extra and Java)."""

    def imbalanced(name: str) -> Peer:
        def make(schema: Any) -> Any:
            from capymoa.base import MOAClassifier
            from jpype import JClass

            return MOAClassifier(JClass(f"moa.classifiers.meta.imbalanced.{name}"), schema=schema, CLI="-l trees.HoeffdingTree -s 10", random_seed=1)

        return _moa_loop(make)

    def classifier(name: str, **kwargs: Any) -> Peer:
        def make(schema: Any) -> Any:
            import capymoa.classifier

            return getattr(capymoa.classifier, name)(schema=schema, random_seed=1, **kwargs)

        return _moa_loop(make)

    return {
        "MOA HoeffdingTree": classifier("HoeffdingTree"),
        "MOA OnlineBagging(10 HT)": classifier("OnlineBagging", ensemble_size=10),
        "MOA ARF(10)": classifier("AdaptiveRandomForestClassifier", ensemble_size=10),
        "MOA OnlineSMOTEBagging(10 HT)": imbalanced("OnlineSMOTEBagging"),
        "MOA OnlineUnderOverBagging(10 HT)": imbalanced("OnlineUnderOverBagging"),
        "MOA OnlineAdaC2(10 HT)": imbalanced("OnlineAdaC2"),
    }
