"""The path of an event: vectorise, score, alert, hold or learn. Pure state, no I/O.

``process(event)`` scores at once; a labelled event then learns (test-then-train). ``learn_label``
joins a delayed label to the event it belongs to. Everything here is the checkpointed state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np

from stream.anomaly import AnomalyScorer
from stream.config import Settings
from stream.events import REASONS, BadRecord, Event, EventBlock, Label, Scored, ScoredBlock
from stream.features import FeatureSpace
from stream.labels import LabelJoin, Pending, RecentIds
from stream.selection import ModelSet
from stream.quality import Prequential
from stream.sampling import VQSampler
from stream.threshold import Threshold
from stream.weighting import ClassWeights

# Test hook: called with (event id, label) on every learning step (counts "learned twice").
LearnHook = Callable[[str, int], None]


@dataclass(slots=True)
class LearnRun:
    """Labelled events of a block, in order, waiting for their micro-batch's end: what their
    ``Pending`` entries would hold, as columns. The columns are the whole block's (its runs share
    them: a micro-batch's runs are gathered in one indexing); ``index`` picks the run's events
    (None: all of them)."""

    ids: list[str]
    rows: np.ndarray
    ys: list[int | None]
    served: np.ndarray
    verdicts: np.ndarray  # 2 x events: alert, class decision
    candidates: np.ndarray  # candidates x events
    index: range | list[int] | None = None

    def __getstate__(self) -> list[Any]:
        return [self.ids, self.rows, self.ys, self.served, self.verdicts, self.candidates, self.index]

    def __setstate__(self, state: list[Any]) -> None:
        # Saved before runs shared their block's columns: six fields, the run's own (index None).
        self.ids, self.rows, self.ys, self.served, self.verdicts, self.candidates, self.index = [*state, None][:7]
        if self.verdicts.ndim == 1:  # saved before events had a class decision: their alerts were theirs
            self.verdicts = np.stack([self.verdicts, self.verdicts])

    def of(self, index: range | list[int]) -> LearnRun:
        """The run of these events of the block."""
        return LearnRun(self.ids, self.rows, self.ys, self.served, self.verdicts, self.candidates, index)


# What the threshold says of scores: the alert cut each was judged by, and their verdicts (2 x
# scores: alerts, class decisions).
Judgement = tuple[np.ndarray, np.ndarray]

# One learning step or a run of them, in the order they were learned.
Step = tuple[Pending, int] | LearnRun


class Pipeline:
    """All learning state of the service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.features = FeatureSpace(settings.input.features)
        self.sampler: VQSampler | None = None  # needs the dimension: built on the first event
        self.weights = ClassWeights(settings.weighting)
        self.model = ModelSet(settings.model, settings.selection, settings.threshold.alert_budget)
        self.anomaly = AnomalyScorer(settings.anomaly, settings.model.seed)
        self.threshold = Threshold(settings.threshold)
        self.labels = LabelJoin(settings.labels.max_pending, settings.labels.ttl_seconds)
        self.ids = RecentIds(settings.input.dedupe_window)
        self.quality = Prequential(settings.quality.rolling_window, settings.threshold.alert_budget)
        self.counts: dict[str, int] = dict.fromkeys(
            ("scored", "alerts", "labelled", "learned", "expired_dropped", "expired_as_negative"), 0
        )
        self.labels_by_class = [0, 0]
        self.dead_letters: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.last_ts = 0.0
        # The micro-batch being scored: its events so far, and the learning steps that wait for its end.
        self.in_batch = 0
        self.unlearned: list[Step] = []
        self.history = History(settings.quality.report_every)
        self.learn_hook: LearnHook | None = None
        self.latency: dict[str, list[float]] = {"score": [], "learn": []}  # sampled seconds, not state

    def process(self, event: Event) -> Scored:
        """Score ``event``; learn from it if labelled, else hold it for its label."""
        result = self.process_many([event])[0]
        if isinstance(result, BadRecord):
            raise result
        assert result is not None
        return result

    def process_many(self, messages: Sequence[Event | Label]) -> list[Scored | BadRecord | None]:
        """Score the events and learn the labels, in order; a label-only message gives None.

        Scoring goes ``model.micro_batch`` events at a time, one kernel call per model; the models
        learn only between micro-batches (what a micro-batch's labels teach waits for its end). So
        every event is scored before it is learned (test-then-train), with the models as they stood
        at the start of its micro-batch; and since micro-batches count scored events, the scores do
        not depend on how the input was polled or on bad records in between. A bad message comes
        back as its ``BadRecord`` in its place.
        """
        results: list[Scored | BadRecord | None] = []
        while messages:
            part, messages = head_with_events(messages, self.room, lambda m: isinstance(m, Event))
            results.extend(self.process_part(part))
        return results

    def process_part(self, messages: Sequence[Event | Label]) -> list[Scored | BadRecord | None]:
        """``process_many`` of messages holding at most ``room`` events (a caller that cuts the input
        at micro-batch ends itself); the micro-batch is learned if they complete it."""
        results = self._score_chunk(messages)
        if self.in_batch >= self.settings.model.micro_batch:
            self.end_micro_batch()
        return results

    @property
    def room(self) -> int:
        """Events still to score in the current micro-batch."""
        return self.settings.model.micro_batch - self.in_batch

    def _score_chunk(self, messages: Sequence[Event | Label]) -> list[Scored | BadRecord | None]:
        """Score the chunk's events in one call per model, then take its messages in order."""
        results: list[Scored | BadRecord | None] = [None] * len(messages)
        # Labels before the first event go first: between micro-batches they are learned at once,
        # so the next micro-batch is scored with them however the input was cut.
        first = next((i for i, m in enumerate(messages) if isinstance(m, Event)), len(messages))
        for i in range(first):
            results[i] = self._label(messages[i])  # type: ignore[arg-type]  # not an Event: a Label
        good: list[int] = []
        labels: list[tuple[int, Label]] = []  # (admitted events before it, label)
        label_at: list[int] = []
        for i in range(first, len(messages)):
            message = messages[i]
            if isinstance(message, Event):
                try:
                    self._admit(message)
                    good.append(i)
                except BadRecord as bad:
                    results[i] = bad
            else:
                labels.append((len(good), message))
                label_at.append(i)
        if good:
            started = time.perf_counter()
            events: list[Event] = [messages[i] for i in good]  # type: ignore[misc]
            rows = self.features.vectors(events)
            ids, times, ys = [e.id for e in events], [e.ts for e in events], [e.y for e in events]
            served, candidates, anomalies, judged = self._score_rows(rows, ys, started)
            scored, label_results = self._take_among(labels, ids, times, ys, rows, served, candidates, anomalies, judged)
            for i, record in zip(good, scored):
                results[i] = record
        else:  # every event refused: the labels are still learned
            label_results = [self._label(label) for _, label in labels]
        for i, result in zip(label_at, label_results):
            results[i] = result
        return results

    def _take_among(
        self, labels: Sequence[tuple[int, Label]], ids: list[str], ts: list[float | None], ys: list[int | None],
        rows: np.ndarray, served: np.ndarray, candidates: np.ndarray, anomalies: np.ndarray, judged: Judgement,
    ) -> tuple[ScoredBlock, list[BadRecord | None]]:  # fmt: skip
        """``_take`` of scored events with ``labels`` among them (each after the number of events it
        says, in order): a label keeps its place, the events before it are held or learned first.
        Returns the events' score records and each label's result."""
        scored = ScoredBlock(model_version=self.model.version)  # learning waits for the micro-batch's end
        cuts, verdicts = judged
        columns = LearnRun(ids, rows, ys, served, verdicts, candidates)
        label_results: list[BadRecord | None] = []
        done = 0
        for position, label in [*labels, (len(ids), None)]:
            if position > done:
                self._take(columns, done, position, ts[done:position], anomalies[done:position], cuts[done:position], scored)
                done = position
            if label is not None:
                label_results.append(self._label(label))
        return scored, label_results

    def _score_rows(
        self, rows: np.ndarray, ys: list[int | None], started: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Judgement]:
        """Served scores, candidates' scores, anomalies and the threshold's judgement of admitted events' rows.

        The models take the whole rows (each learner reads its half); the codebook and the anomaly
        scorer measure distances, on the standardised half.
        """
        zs = np.ascontiguousarray(rows[:, : self.features.dim])
        if self.sampler is None:
            self.sampler = VQSampler(self.settings.sampler, zs.shape[1], self.settings.model.seed)
        served, candidates = self.model.score_many(rows)
        anomalies = self.anomaly.score_many(zs, self.sampler)
        self._sample("score", started)  # an event's score exists once its chunk's does
        judged = self.threshold.judge(served)
        alerts = judged[1][0]
        self.counts["scored"] += len(ys)
        self.counts["alerts"] += int(alerts.sum())
        self.in_batch += len(ys)
        self.anomaly.learn_many(zs[[y != 1 for y in ys]])  # normal traffic only
        return served, candidates, anomalies, judged

    def process_block(
        self, block: EventBlock, labels: Sequence[tuple[int, Label]] = ()
    ) -> tuple[ScoredBlock, list[BadRecord | None]] | None:
        """``process_part`` of a block of plain events (at most ``room``) and of ``labels`` among
        them (each after the number of the block's events it says, in order): the same results and
        state, with no object per event but its score. Returns the score records and each label's
        result; None, with nothing changed, when the block needs the general path: its fields are
        not the features, or an id may be a duplicate."""
        ids = block.ids
        if len(set(ids)) < len(ids) or self.ids.any_of(ids):
            return None
        columns = self.features.columns(block.names)
        if columns is None:
            return None
        # As in _score_chunk: labels before the first event go first, the others among the events.
        first = next((k for k, (position, _) in enumerate(labels) if position > 0), len(labels))
        label_results = [self._label(label) for _, label in labels[:first]]
        started = time.perf_counter()
        self.ids.add_many(ids)
        rows = self.features.rows(block.raw[:, columns])
        served, candidates, anomalies, judged = self._score_rows(rows, block.ys, started)
        scored, among = self._take_among(labels[first:], ids, block.ts, block.ys, rows, served, candidates, anomalies, judged)
        label_results += among
        if self.in_batch >= self.settings.model.micro_batch:
            self.end_micro_batch()
        return scored, label_results

    def _take(
        self, columns: LearnRun, start: int, end: int, ts: list[float | None], anomalies: np.ndarray, cuts: np.ndarray,
        out: ScoredBlock,
    ) -> None:  # fmt: skip
        """Hold or learn scored events ``start`` to ``end`` of ``columns``, in order (``ts``,
        ``anomalies``, ``cuts``: theirs); their score records join ``out``."""
        out.ts += self._hold_or_learn(columns, start, end, ts)
        out.ids += columns.ids[start:end]
        out.scores += columns.served[start:end].tolist()
        out.anomalies += anomalies.tolist()
        out.alerts += columns.verdicts[0, start:end].tolist()
        out.predicted += columns.verdicts[1, start:end].tolist()
        out.thresholds += cuts.tolist()

    def _hold_or_learn(self, columns: LearnRun, start: int, end: int, ts: list[float | None]) -> list[float]:
        """Each event, in order: an unlabelled one waits in the label store, a labelled one's learning
        step waits for the micro-batch's end (test-then-train). Returns their times (a missing one
        is the latest seen)."""
        ys = columns.ys
        if not self.labels.pending and None not in ts and None not in ys[start:end]:
            # Every event labelled and timed, no label store to expire: they learn as one run.
            timed = cast(list[float], ts)
            self.last_ts = max(self.last_ts, *timed)
            self.unlearned.append(columns.of(range(start, end)))
            return timed
        times: list[float] = []
        run: list[int] = []  # labelled events since the last other learning step
        for i, t in zip(range(start, end), ts):
            t = self.last_ts if t is None else t
            self.last_ts = max(self.last_ts, t)
            times.append(t)
            y = ys[i]
            gone = self.labels.expire(t) if y is not None and self.labels.pending else []
            if y is None:
                pending = Pending(
                    columns.ids[i], t, columns.rows[i], float(columns.served[i]), bool(columns.verdicts[0, i]),
                    bool(columns.verdicts[1, i]), columns.candidates[:, i],
                )  # fmt: skip
                gone = self.labels.hold(pending)
            if gone:  # expired events may learn (as negatives): after the run so far
                if run:
                    self.unlearned.append(columns.of(run))
                run = []
                self._expired(gone)
            if y is not None:
                run.append(i)
        if run:
            self.unlearned.append(columns.of(run))
        return times

    def _label(self, label: Label) -> BadRecord | None:
        try:
            self.learn_label(label)
        except BadRecord as bad:
            return bad
        return None

    def end_micro_batch(self) -> None:
        """The models learn what the micro-batch's labels (inline or delayed) taught, in order."""
        self.in_batch = 0
        steps, self.unlearned = self.unlearned, []
        if steps:
            started = time.perf_counter()
            ids, rows, ys, served, verdicts, scores = learn_columns(steps)
            i = 0
            while i < len(ids):
                # The drift monitors take a run in one call, up to an event that needs a decision.
                end, changed = self.model.observe_many(rows, ys, scores, i)
                if end == i:
                    end, changed = i + 1, self.model.observe(rows[i], int(ys[i]), scores[:, i])
                self._account(served[i:end], verdicts[:, i:end], ys[i:end])
                if changed:  # at the run's last event, before it trains
                    self._train(ids[i : end - 1], rows[i : end - 1], ys[i : end - 1])
                    self._changed()
                    self._train(ids[end - 1 : end], rows[end - 1 : end], ys[end - 1 : end])
                else:
                    self._train(ids[i:end], rows[i:end], ys[i:end])
                i = end
            self._sample("learn", started)
        self.model.flush()
        self.anomaly.flush()

    def _admit(self, event: Event) -> None:
        """Refuse a duplicate or an event that cannot be vectorised; else remember its id."""
        if event.id in self.ids:
            raise BadRecord("duplicate_id", f"event id {event.id!r} was seen already")
        self.features.check(event)
        self.ids.add(event.id)

    def learn_label(self, label: Label) -> None:
        """Learn from a delayed label with the features and score its event had."""
        pending = self.labels.join(label.id)
        if pending is None:
            raise BadRecord("unknown_label_id", f"no pending event with id {label.id!r}")
        self._learn(pending, label.y)
        if not self.in_batch:  # between micro-batches: the next one is scored with it learned either way
            self.end_micro_batch()

    def _expired(self, gone: list[Pending]) -> None:
        for entry in gone:
            if self.settings.labels.timeout_as_negative:
                self.counts["expired_as_negative"] += 1
                self._learn(entry, 0)
            else:
                self.counts["expired_dropped"] += 1

    def _learn(self, event: Pending, y: int) -> None:
        self.unlearned.append((event, y))

    def _account(self, ps: np.ndarray, verdicts: np.ndarray, ys: np.ndarray) -> None:
        """Prequential: the scores and ``verdicts`` (alerts, class decisions) were served before
        these labels were known."""
        start = 0
        while start < len(ys):  # pieces end where the history takes a point
            every = self.history.every
            end = start + min(len(ys) - start, every - self.quality.n % every)
            self.quality.observe_many(ys[start:end], ps[start:end], verdicts[:, start:end])
            self.threshold.observe_labels(ys[start:end], ps[start:end])
            positives = int(ys[start:end].sum())
            self.counts["labelled"] += end - start
            self.labels_by_class[0] += end - start - positives
            self.labels_by_class[1] += positives
            self.history.maybe_record(self)
            start = end

    def _changed(self) -> None:
        """The served model changed at the event just accounted for."""
        self.history.drift(self.counts["scored"], self.model.version)
        if self.model.drifted:
            assert self.sampler is not None
            self.sampler.on_drift()

    def _train(self, ids: list[str], rows: np.ndarray, ys: np.ndarray) -> None:
        """Sample, weigh and learn a run of labelled events (in order; kernels over the run)."""
        assert self.sampler is not None
        ws = self.sampler.weight_many(np.ascontiguousarray(rows[:, : self.features.dim]), ys)
        kept = ws > 0.0
        ws = ws[kept] * self.weights.weigh_many(ys[kept], ws[kept])
        self.model.learn_many(rows[kept], ys[kept], ws)
        self.counts["learned"] += int(kept.sum())
        if self.learn_hook is not None:
            for event_id, y, learned in zip(ids, ys.tolist(), kept.tolist()):
                if learned:
                    self.learn_hook(event_id, y)

    def _sample(self, stage: str, started: float) -> None:
        samples = self.latency[stage]
        if len(samples) < 4096:  # drained by the loop at each metrics publish
            samples.append(time.perf_counter() - started)

    def dead_letter(self, reason: str) -> None:
        self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """Everything an operator or the end-of-run report needs, as plain numbers."""
        sampler = self.sampler.stats() if self.sampler else {}
        return {
            "counts": dict(self.counts),
            "labels_by_class": list(self.labels_by_class),
            "dead_letters": dict(self.dead_letters),
            "model_version": self.model.version,
            "drifts": dict(self.model.drifts),
            "drift_reverts": self.model.reverts,
            "candidates": self.model.summary(),
            "model_switches": self.model.switches,
            "threshold": self.threshold.value,
            "class_threshold": self.threshold.balanced,
            "alerts_withheld": self.threshold.withheld,
            # The share of events the rule alerts on; none when the G-mean cut decides.
            "alert_budget": self.settings.threshold.alert_budget if self.settings.threshold.mode == "budget" else None,
            "label_store_size": len(self.labels),
            "label_store_expired": self.labels.expired_total,
            "features_imputed": self.features.imputed_total,
            "features_unknown": self.features.extra_total,
            "minority_prior": self.sampler.priors.prior(1) if self.sampler else 0.0,
            "class_weights": [self.weights.weight(0), self.weights.weight(1)],
            "sampler": sampler,
            "run": self.quality.summary(),
            "rolling": self.quality.rolling(),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["learn_hook"] = None  # a test hook is not state
        state["latency"] = {"score": [], "learn": []}
        return state


def learn_columns(steps: list[Step]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids, rows, labels, served scores, verdicts (2 x events) and candidates' scores (candidates x events) of the
    steps, in order: the runs of each block in one indexing of its columns, the delayed labels'
    events (single steps) stacked."""
    blocks: dict[int, tuple[LearnRun, list[int], list[int]]] = {}  # by columns: (them, places, events)
    singles: list[tuple[int, Pending, int]] = []  # (place, event, label)
    n = 0
    for step in steps:
        if isinstance(step, LearnRun):
            index = range(len(step.ids)) if step.index is None else step.index
            _, places, events = blocks.setdefault(id(step.rows), (step, [], []))
            places += range(n, n + len(index))
            events += index
            n += len(index)
        else:
            singles.append((n, *step))
            n += 1
    if len(blocks) == 1 and not singles:  # one block's runs only (no delayed label between)
        columns, _, events = next(iter(blocks.values()))
        ys = np.fromiter((columns.ys[i] for i in events), dtype=np.int64, count=n)
        # Runs keep the block's order: a gapless one is a slice (views, no copy).
        pick = slice(events[0], events[-1] + 1) if events[-1] - events[0] == n - 1 else events
        # (np.take: indexing the second axis with a list would give a Fortran-ordered array, and the
        # kernels fed from it one more compiled variant each, compiled in a run, not at warm-up.)
        if isinstance(pick, slice):
            scores, verdicts = columns.candidates[:, pick], columns.verdicts[:, pick]
        else:
            scores, verdicts = np.take(columns.candidates, pick, axis=1), np.take(columns.verdicts, pick, axis=1)
        return [columns.ids[i] for i in events], columns.rows[pick], ys, columns.served[pick], verdicts, scores
    some = next(iter(blocks.values()))[0] if blocks else None  # the shapes: of a run, or of a single step
    width = some.rows.shape[1] if some else singles[0][1].row.shape[0]
    models = some.candidates.shape[0] if some else singles[0][1].candidates.shape[0]
    ids, ys = [""] * n, np.empty(n, dtype=np.int64)
    rows, served, verdicts, scores = np.empty((n, width)), np.empty(n), np.empty((2, n), dtype=bool), np.empty((models, n))
    for columns, places, events in blocks.values():
        for place, i in zip(places, events):
            ids[place] = columns.ids[i]
        ys[places] = np.fromiter((columns.ys[i] for i in events), dtype=np.int64, count=len(events))
        rows[places], served[places] = columns.rows[events], columns.served[events]
        verdicts[:, places], scores[:, places] = columns.verdicts[:, events], columns.candidates[:, events]
    for place, pending, y in singles:
        ids[place], ys[place], rows[place] = pending.id, y, pending.row
        served[place], verdicts[:, place], scores[:, place] = pending.score, (pending.alert, pending.predicted), pending.candidates
    return ids, rows, ys, served, verdicts, scores


class History:
    """Rolling quality over the stream, for the end-of-run plot; thinned to stay bounded."""

    MAX_POINTS = 4_000

    def __init__(self, every: int) -> None:
        self.every = every
        self.points: list[tuple[int, float, float, float]] = []  # scored, pr_auc, recall, alert rate
        self.drifts: list[tuple[int, int]] = []  # scored, new model version
        self._last = (0, 0)  # scored, alerts at the previous point

    def maybe_record(self, pipeline: Pipeline) -> None:
        if pipeline.quality.n % self.every:
            return
        rolling = pipeline.quality.rolling()
        scored, alerts = pipeline.counts["scored"], pipeline.counts["alerts"]
        rate = (alerts - self._last[1]) / max(1, scored - self._last[0])
        self._last = (scored, alerts)
        self.points.append((scored, rolling["pr_auc"], rolling["recall"], rate))
        if len(self.points) > self.MAX_POINTS:
            self.points = self.points[::2]
            self.every *= 2

    def drift(self, scored: int, version: int) -> None:
        self.drifts.append((scored, version))
        del self.drifts[: -self.MAX_POINTS]


T = TypeVar("T")


def head_with_events(items: Sequence[T], n: int, is_event: Callable[[T], bool]) -> tuple[Sequence[T], Sequence[T]]:
    """The head of ``items`` holding (at most) ``n`` events, and the rest."""
    end = 0
    while end < len(items) and n > 0:
        n -= is_event(items[end])
        end += 1
    return items[:end], items[end:]
