"""The fraud-probability model: a learner with class-aware drift handling.

On an imbalanced stream the overall error is the majority's error, so a detector on it never sees
the minority concept change. Here each class's error (``1 - p`` for positives, ``p`` for negatives)
feeds its own detector pair: a sensitive *warning* detector starts a background model that learns
beside the served one; the *drift* detector confirms, and the background model is swapped in (and
``version`` goes up) as soon as it ranks the events both have scored better, by more than resampling
the positives can explain. Only increases of the error count: a model that gets better is no drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from stream.adwin import monitor_update, new_monitors
from stream.config import ModelSettings
from stream.linear import LogisticRegression
from stream.quality import average_precision, resampled_average_precision
from stream.trees import HoeffdingForest
from stream.windows import Ranked, ring_write


class Learner(Protocol):
    """What the model set needs of a learner: P(class 1) of feature rows, weighted steps."""

    def proba(self, z: np.ndarray) -> float: ...

    def proba_many(self, zs: np.ndarray) -> np.ndarray: ...

    def learn(self, z: np.ndarray, y: int, w: float) -> None: ...

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None: ...


class LearnBuffer:
    """A learner whose steps wait in a buffer until it is read (or the buffer is full).

    Learning stays in event order; what changes is that the compiled learners take a run of events
    in one kernel call instead of one call (and one Poisson draw) per event.
    """

    CAPACITY = 512

    def __init__(self, learner: Learner) -> None:
        self.learner = learner
        self.zs = np.zeros((0, 0))
        self.ys = np.zeros(self.CAPACITY, dtype=np.int64)
        self.ws = np.zeros(self.CAPACITY)
        self.n = 0

    def learn(self, z: np.ndarray, y: int, w: float) -> None:
        if self.zs.shape[1] != z.shape[0]:
            self.flush()
            self.zs = np.zeros((self.CAPACITY, z.shape[0]))
        self.zs[self.n], self.ys[self.n], self.ws[self.n] = z, y, w
        self.n += 1
        if self.n == self.CAPACITY:
            self.flush()

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        if zs.shape[0] == 1:  # one at a time: gather
            self.learn(zs[0], int(ys[0]), float(ws[0]))
            return
        self.flush()
        if zs.shape[0]:
            self.learner.learn_many(zs, ys, ws)

    def flush(self) -> None:
        if self.n:
            n, self.n = self.n, 0
            self.learner.learn_many(self.zs[:n], self.ys[:n], self.ws[:n])

    def proba(self, z: np.ndarray) -> float:
        self.flush()
        return self.learner.proba(z)

    def proba_many(self, zs: np.ndarray) -> np.ndarray:
        self.flush()
        return self.learner.proba_many(zs)


class Half:
    """A learner that reads one half of the feature rows (``stream.features``): the standardised
    half (a linear model needs one scale) or the raw half (trees: split thresholds learned on a
    running standardisation would move whenever the stream's mean moves)."""

    def __init__(self, learner: Learner, raw: bool) -> None:
        self.learner = learner
        self.raw = raw

    def _half(self, rows: np.ndarray) -> np.ndarray:
        dim = rows.shape[-1] // 2
        return np.ascontiguousarray(rows[..., dim:] if self.raw else rows[..., :dim])

    def proba(self, row: np.ndarray) -> float:
        return self.learner.proba(self._half(row))

    def proba_many(self, rows: np.ndarray) -> np.ndarray:
        return self.learner.proba_many(self._half(rows))

    def learn(self, row: np.ndarray, y: int, w: float) -> None:
        self.learner.learn(self._half(row), y, w)

    def learn_many(self, rows: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        self.learner.learn_many(self._half(rows), ys, ws)


class RiverLearner:
    """A river classifier behind the array interface (feature ``i`` is the key ``str(i)``).

    A learner without sample weights learns an event Poisson(w) times (river's ARF).
    """

    def __init__(self, model: Any, takes_weight: bool, seed: int) -> None:
        self.model = model
        self.takes_weight = takes_weight
        self.rng = np.random.default_rng(seed)
        self.keys: list[str] = []

    def _dict(self, z: np.ndarray) -> dict[str, float]:
        if len(self.keys) != z.shape[0]:
            self.keys = [str(i) for i in range(z.shape[0])]
        return dict(zip(self.keys, z.tolist()))

    def proba(self, z: np.ndarray) -> float:
        proba = self.model.predict_proba_one(self._dict(z))
        return float(proba.get(1, proba.get(True, 0.0))) if proba else 0.0

    def proba_many(self, zs: np.ndarray) -> np.ndarray:
        return np.array([self.proba(z) for z in zs])

    def learn(self, z: np.ndarray, y: int, w: float) -> None:
        x = self._dict(z)
        if self.takes_weight:
            self.model.learn_one(x, y, w=w)
            return
        for _ in range(int(self.rng.poisson(w))):
            self.model.learn_one(x, y)

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        for z, y, w in zip(zs, ys.tolist(), ws.tolist()):
            self.learn(z, y, w)


def _logreg(s: ModelSettings) -> Learner:
    # The standardised half, standardised over the whole stream by FeatureSpace: that is the
    # StandardScaler step, done where undersampling cannot bias it.
    return Half(LogisticRegression(s.learning_rate), raw=False)


def _hoeffding(s: ModelSettings) -> Learner:
    forest = HoeffdingForest(1, s.grace_period, tau=s.tie_threshold, max_leaves=s.max_leaves, bagging=False, seed=s.seed)
    return Half(forest, raw=True)


def _bagging(s: ModelSettings) -> Learner:
    forest = HoeffdingForest(
        s.ensemble_size, s.grace_period, tau=s.tie_threshold, max_leaves=s.max_leaves, subspace=s.subspace,
        rate=s.bagging_rate, seed=s.seed,
    )  # fmt: skip
    return Half(forest, raw=True)


# river is imported where used: importing it costs over a second (river.drift pulls in sklearn), and
# the default models and detectors are ours.


def _hat(s: ModelSettings) -> Learner:
    import river.tree

    model = river.tree.HoeffdingAdaptiveTreeClassifier(grace_period=s.grace_period, max_share_to_split=1.0, seed=s.seed)
    return Half(RiverLearner(model, takes_weight=True, seed=s.seed), raw=True)


def _arf(s: ModelSettings) -> Learner:
    import river.forest

    model = river.forest.ARFClassifier(
        n_models=s.ensemble_size, grace_period=s.grace_period, max_share_to_split=1.0, seed=s.seed
    )
    return Half(RiverLearner(model, takes_weight=False, seed=s.seed), raw=True)


# kind -> factory; logreg, hoeffding and bagging are compiled (stream.linear, stream.trees).
LEARNERS: dict[str, Callable[[ModelSettings], Learner]] = {
    "logreg": _logreg,
    "hoeffding": _hoeffding,
    "bagging": _bagging,
    "hat": _hat,
    "arf": _arf,
}


def make_detector(kind: str, delta: float, seed: int) -> Any:
    import river.drift

    if kind == "kswin":
        return river.drift.KSWIN(alpha=delta, seed=seed)
    if kind == "page_hinkley":
        return river.drift.PageHinkley()
    raise ValueError(f"model.drift: unknown detector {kind!r}")


class ClassErrorMonitor:
    """A detector on one class's error that reports only increases.

    "Increase" compares the detector's estimate after a drift with the mean error since its last
    one, which this keeps itself (the window ADWIN had before it cut): reading the detector's
    estimate on every event costs more than the detector.
    """

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.total, self.n = 0.0, 0  # errors since the last drift

    def update(self, error: float) -> bool:
        before = self.total / self.n if self.n else 0.0
        self.total += error
        self.n += 1
        self.detector.update(error)
        if not self.detector.drift_detected:
            return False
        after = getattr(self.detector, "estimation", None)
        if after is None:  # a detector without an estimate: take its word
            return True
        width = getattr(self.detector, "width", 0)
        self.total, self.n = float(after) * width, int(width)  # what the detector kept
        return float(after) > before


class AdwinMonitors:
    """The four ADWIN monitors of a model (drift and warning, per class) in one compiled bank.

    Rows 0 and 1 confirm a drift of class 0's / class 1's error, rows 2 and 3 warn of one.
    """

    def __init__(self, drift_delta: float, warning_delta: float) -> None:
        self.stats, self.buckets, self.counts = new_monitors([drift_delta, drift_delta, warning_delta, warning_delta])

    def update(self, k: int, error: float) -> tuple[bool, bool]:
        """(warning, drift) after monitor pair ``k`` saw ``error``."""
        warn = monitor_update(self.buckets, self.counts, self.stats, 2 + k, error)
        return warn, monitor_update(self.buckets, self.counts, self.stats, k, error)


class RiverMonitors:
    """The same monitors on river's other detectors (KSWIN, Page-Hinkley: no warning level)."""

    def __init__(self, kind: str, delta: float, seed: int) -> None:
        self.drift = [ClassErrorMonitor(make_detector(kind, delta, seed + c)) for c in (0, 1)]

    def update(self, k: int, error: float) -> tuple[bool, bool]:
        return False, self.drift[k].update(error)


class OnlineModel:
    """Served learner + optional background learner, per-class drift and warning monitors."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.factory = LEARNERS[settings.kind]
        self.learner = self._new_learner()
        self.background: Challenger | None = None
        self.version = 1
        self.drifts: dict[str, int] = {"positive": 0, "negative": 0}
        self.reverts = 0  # swaps undone: the replaced model came back
        self.monitors = self._monitors()
        self.cooldown = settings.drift_cooldown

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("reverts", 0)  # saved by a build without reverts
        self.__dict__.update(state)

    def _monitors(self) -> AdwinMonitors | RiverMonitors | None:
        s = self.settings
        if s.drift == "none":
            return None
        if s.drift == "adwin":
            return AdwinMonitors(s.drift_delta, s.warning_delta)
        return RiverMonitors(s.drift, s.drift_delta, s.seed)

    def _new_learner(self) -> LearnBuffer:
        return LearnBuffer(self.factory(self.settings))

    def score(self, z: np.ndarray) -> float:
        """Probability of the positive class."""
        return self.learner.proba(z)

    def score_many(self, zs: np.ndarray) -> np.ndarray:
        """Probability of the positive class, per row."""
        return self.learner.proba_many(zs)

    def learn(self, z: np.ndarray, y: int, w: float) -> None:
        self.learn_many(z[None, :], np.array([y], dtype=np.int64), np.array([w]))

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        self.learner.learn_many(zs, ys, ws)
        if self.background is not None:
            self.background.learner.learn_many(zs, ys, ws)

    def flush(self) -> None:
        """Let the buffered steps reach the learners (before their state is saved or shown)."""
        self.learner.flush()
        if self.background is not None:
            self.background.learner.flush()

    def observe(self, z: np.ndarray, y: int, p: float) -> bool:
        """Feed the prequential error of a labelled event; True when the model was swapped."""
        if self.monitors is None:
            return False
        if self.background is not None:
            self.background.compare(y, p, self.background.learner.proba(z))
        if self.cooldown > 0:  # a young model's falling error is learning, not a concept change
            self.cooldown -= 1
            return self._maybe_swap()  # a hedge decides meanwhile (as at the end of observe_many's runs)
        error = 1.0 - p if y == 1 else p
        # Overall error (an ablation) is the majority's error on an imbalanced stream: one monitor.
        warn, drift = self.monitors.update(y if self.settings.drift_scope == "per_class" else 0, error)
        return self.react(y, warn, drift)

    def react(self, y: int, warn: bool, drift: bool) -> bool:
        """Act on what the monitors said of a labelled event; True when the model was swapped."""
        if warn:
            self._start_background()
        if drift:
            self._start_background()
            assert self.background is not None
            self.background.confirmed = "positive" if y == 1 else "negative"
        return self._maybe_swap()

    def _start_background(self) -> None:
        # A warning once the new model is watched (after the cooldown) ends a hedge: a fresh trial.
        if self.background is None or self.background.confirmed == REVERT:
            # Room for every event of the trial: its window never wraps.
            self.background = Challenger(self._new_learner(), self.settings.background_timeout + 1)

    def _maybe_swap(self) -> bool:
        bg = self.background
        if bg is None:
            return False
        confidence = self.settings.revert_confidence if bg.confirmed == REVERT else self.settings.swap_confidence
        if bg.confirmed and bg.better(self.settings.swap_min_positives, confidence):
            self._swap(bg)
            return True
        if bg.age > self.settings.background_timeout:
            self.background = None  # a warning that never became a better model
        return False

    def _swap(self, bg: Challenger) -> None:
        replaced, self.learner, self.background = self.learner, bg.learner, None
        self.version += 1
        if bg.confirmed == REVERT:
            self.reverts += 1
        else:
            self.drifts[bg.confirmed] += 1
            if self.settings.revert_confidence > 0:
                # A swap is a bet on the young model's future, made on a few dozen positives: the
                # replaced model keeps learning beside it and comes back if it ranks the events
                # since the swap surely better (it had been adapting by itself).
                self.background = Challenger(replaced, self.settings.background_timeout + 1)
                self.background.confirmed = REVERT
        # The new model has its own error level: watch it afresh once it has settled.
        self.monitors = self._monitors()
        self.cooldown = self.settings.drift_cooldown


RESAMPLES = 200


def surely_better(
    these: np.ndarray, those: np.ndarray, labels: np.ndarray, ranked: tuple[np.ndarray, np.ndarray], confidence: float
) -> bool:
    """Whether ``these`` scores' average precision beats ``those`` by ``confidence`` standard
    deviations of the lead over bootstrap resamples of the positives (``ranked``: both sorted).

    A few positives into a trial, a young model's lead in average precision is often luck (20
    positives ranked by two models that know little); swapping on it throws away a served model that
    was adapting by itself. The resamples are drawn from the window's size, so a verdict is the same
    when it is asked again (after a restore too).
    """
    positives = int(labels.sum())
    drawn = np.random.default_rng(labels.shape[0]).multinomial(positives, np.full(positives, 1.0 / positives), size=RESAMPLES)
    lead = resampled_average_precision(these, labels, drawn, ranked[0]) - resampled_average_precision(those, labels, drawn, ranked[1])
    return float(lead.mean()) > confidence * float(lead.std())


REVERT = "revert"  # a Challenger's ``confirmed``: the model a swap replaced, on trial to come back


class Challenger:
    """A background model started by a warning, and its scores next to the served model's.

    A confirmed drift swaps it in only once it *ranks* the events both have scored better (higher
    average precision, the quantity users care about on a rare class, by a lead that resampling the
    positives does not explain away): after a real concept change that happens within a few dozen
    positives; after a false alarm it never does, and the served model, with everything it learned,
    stays.
    """

    def __init__(self, learner: LearnBuffer, capacity: int) -> None:
        self.learner = learner
        self.age = 0
        self.confirmed = ""  # the detector ("positive"/"negative") that confirmed a drift
        self.scores = np.zeros((2, capacity))  # served, background
        self.labels = np.zeros(capacity, dtype=np.int64)
        self.positives = 0
        # The verdict of the ranking at the last positive (the window then: its first n events);
        # worked out only when asked, which is after a confirmed drift.
        self._verdict: bool | None = False
        self._verdict_n = 0
        self._ranked = Ranked(2, capacity)  # both models' scores, sorted, as far as the last verdict

    def compare(self, y: int, p_served: float, p_background: float) -> None:
        self.compare_many(np.array([y]), np.array([p_served]), np.array([p_background]))

    def compare_many(self, ys: np.ndarray, served: np.ndarray, background: np.ndarray) -> None:
        """Both models' scores of a run of labelled events join the window, in order."""
        self.age = ring_write(self.scores, self.labels, self.age, np.stack([served, background]), ys)
        if ys.any():  # rankings only change their verdict at a positive
            self.positives += int(ys.sum())
            self._verdict_n = min(self.age - (ys.shape[0] - 1 - int(np.flatnonzero(ys)[-1])), self.labels.shape[0])
            self._verdict = None

    def better(self, min_positives: int, confidence: float) -> bool:
        """Whether the background ranks the trial's events better: a higher average precision, by
        ``confidence`` standard deviations of the lead over resamples of the positives (0: any lead)."""
        if self.positives < min_positives:
            return False
        if self._verdict is None:
            n = self._verdict_n
            ranked = self._ranked_upto(n)
            scores, labels = self.scores[:, :n], self.labels[:n]
            at = np.flatnonzero(labels == 1)
            self._verdict = average_precision(scores[1], labels, ranked[1], at) > average_precision(scores[0], labels, ranked[0], at)
            if self._verdict and confidence > 0:
                self._verdict = surely_better(scores[1], scores[0], labels, (ranked[1], ranked[0]), confidence)
        return self._verdict

    def _ranked_upto(self, n: int) -> list[np.ndarray]:
        """Both rows of ``scores[:, :n]`` sorted: the events since the last verdict are merged in (the
        trial only grows), so a verdict costs a merge, not a sort of the whole trial."""
        if self.age > self.labels.shape[0]:  # the window wrapped at the trial's very end: sort afresh
            self._ranked.restart()
        return self._ranked.update(self.scores, n)
