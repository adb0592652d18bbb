"""The loop over in-memory ports: every event scored once, bad input dead-lettered, run goes on."""

from __future__ import annotations

import threading

import numpy as np
import orjson

from connectors.memory import MemoryDeadLetters, MemorySink, MemorySource
from stream.app import make_decoder
from stream.loop import CommitPolicy, Ports, Runner
from stream.pipeline import Pipeline
from tests.conftest import small_settings


def event(i: int, label: object = 0, **features: object) -> bytes:
    return orjson.dumps({"id": f"e{i}", "ts": 1000.0 + i, "label": label, "a": float(i % 7), "b": 1.0, **features})


BAD = [
    (b"{oops", "invalid_json"),
    (b'"just a string"', "not_an_object"),
    (b'{"ts": 1, "a": 1}', "missing_id"),
    (event(3), "duplicate_id"),
    (b'{"id": "n1", "a": "abc", "b": 1}', "bad_feature"),
    (b'{"id": "n2", "label": 7, "a": 1}', "bad_label"),
    (b'{"id": "n3", "a": 1, "x": "' + b"z" * 70_000 + b'"}', "too_large"),
    (b'{"id": "never-seen", "label": 1}', "unknown_label_id"),
    (b'{"id": "n4", "ts": "soon", "a": 1}', "bad_ts"),
]


def run(values: list[bytes], **overrides: object) -> tuple[Runner, MemorySink, MemoryDeadLetters]:
    settings = small_settings(**overrides)  # type: ignore[arg-type]
    sink, dead = MemorySink(), MemoryDeadLetters()
    runner = Runner(
        Pipeline(settings), make_decoder(settings), Ports(MemorySource(values), sink, dead), None,
        CommitPolicy(1000, 60.0),
    )  # fmt: skip
    runner.run(threading.Event())
    return runner, sink, dead


def test_bad_records_go_to_dead_letters_with_reason_and_origin_and_the_run_goes_on() -> None:
    good = [event(i) for i in range(10)]
    values = good[:5] + [raw for raw, _ in BAD] + good[5:]
    runner, sink, dead = run(values)
    assert [s.id for s in sink.durable] == [f"e{i}" for i in range(10)]
    assert [reason for _, reason, _ in dead.items] == [reason for _, reason in BAD]
    assert dead.items[0][0].origin == "memory:5"
    counted = {k: v for k, v in runner.pipeline.dead_letters.items() if v}
    assert counted == {reason: 1 for _, reason in BAD}


def test_delayed_labels_join_learn_and_count() -> None:
    values = [event(i, label=None) for i in range(20)]
    values += [orjson.dumps({"id": f"e{i}", "label": int(i % 5 == 0)}) for i in range(20)]
    runner, sink, _ = run(values)
    pipeline = runner.pipeline
    assert len(sink.durable) == 20
    assert pipeline.labels_by_class == [16, 4]
    assert len(pipeline.labels) == 0
    assert pipeline.quality.n == 20


def test_expired_events_are_dropped_or_learned_as_negative() -> None:
    values = [event(i, label=None) for i in range(50)]
    dropped, _, _ = run(values, labels={"ttl_seconds": 10.0})
    assert dropped.pipeline.counts["expired_dropped"] == 39
    negative, _, _ = run(values, labels={"ttl_seconds": 10.0, "timeout_as_negative": True})
    assert negative.pipeline.counts["expired_as_negative"] == 39
    assert negative.pipeline.labels_by_class == [39, 0]


def test_a_commit_point_flushes_then_commits_positions() -> None:
    runner, sink, _ = run([event(i) for i in range(30)])
    source = runner.ports.source
    assert isinstance(source, MemorySource)
    assert source.committed == {0: 30}
    assert len(sink.durable) == 30


def test_pacer_replays_at_the_requested_event_time_speed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from stream import loop

    now = [0.0]
    slept: list[float] = []
    monkeypatch.setattr(loop.time, "sleep", lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    pacer = loop.Pacer(speed=10.0, clock=lambda: now[0])
    for ts in (100.0, 105.0, 110.0):
        pacer.wait(ts)
    assert sum(slept) == 1.0  # 10 s of event time at 10x


def outcome(runner: Runner, sink: MemorySink, dead: MemoryDeadLetters) -> tuple[object, ...]:
    """What a run gave: every score record, the dead letters, the counts, quality and positions."""
    pipeline = runner.pipeline
    return (
        [(s.id, s.ts, s.score, s.anomaly, s.alert, s.predicted, s.threshold, s.model_version) for s in sink.durable],
        [(r.origin, reason) for r, reason, _ in dead.items],
        pipeline.counts, pipeline.labels_by_class, pipeline.quality.summary(), runner.positions,
    )  # fmt: skip


def test_scores_do_not_depend_on_how_the_input_is_polled(monkeypatch: object) -> None:
    rng = np.random.default_rng(5)
    values = []
    for i in range(3000):
        y = int(rng.random() < 0.05)
        values.append(event(i, label=None if i % 3 == 0 else y, c=float(rng.normal(2.0 * y, 1.0))))
        if i % 3 == 0 and i > 20:  # a delayed label for an event a few lines back
            values.append(orjson.dumps({"id": f"e{i - 18}", "label": int(rng.random() < 0.05)}))
    outputs = []
    for batch in (512, 7, 1):
        monkeypatch.setattr("stream.loop.BATCH", batch)  # type: ignore[attr-defined]
        runner, sink, _ = run(values, model={"micro_batch": 64})
        outputs.append([(s.id, s.score, s.anomaly, s.model_version) for s in sink.durable])
        assert runner.pipeline.counts["learned"] > 1000
    assert outputs[0] == outputs[1] == outputs[2]


def test_the_class_decision_is_what_gmean_mode_alerts_on_and_leaves_the_alerts_alone() -> None:
    """Every event gets both verdicts; the class decision of the default (budget) mode is the alert of
    ``threshold.mode = "gmean"`` event for event (inline and delayed labels), and the budget mode's
    alerts stay within the budget."""
    rng = np.random.default_rng(6)
    values = []
    for i in range(4000):
        y = int(rng.random() < 0.05)
        values.append(event(i, label=None if i % 3 == 0 else y, c=float(rng.normal(1.5 * y, 1.0))))
        if i % 3 == 0 and i > 20:
            values.append(orjson.dumps({"id": f"e{i - 18}", "label": int(rng.random() < 0.05)}))
    runs = {mode: run(values, threshold={"mode": mode, "alert_budget": 0.01}) for mode in ("budget", "gmean")}
    budget, gmean = ([s for s in sink.durable] for _, sink, _ in runs.values())
    assert [s.predicted for s in budget] == [s.alert for s in gmean]
    assert [s.score for s in budget] == [s.score for s in gmean]
    alerts, predicted = (np.array([getattr(s, name) for s in budget]) for name in ("alert", "predicted"))
    assert alerts.mean() < 0.02 < predicted.mean()
    summary = runs["budget"][0].pipeline.quality.summary()
    assert summary["class_gmean"] > summary["gmean"] and summary["class_recall"] > summary["recall"]
    assert runs["gmean"][0].pipeline.quality.summary()["gmean"] == summary["class_gmean"]


def test_a_micro_batch_is_scored_before_any_of_its_labels_is_learned() -> None:
    settings = small_settings(model={"micro_batch": 16})
    pipeline = Pipeline(settings)
    decoder = make_decoder(settings)
    for i in range(16):
        pipeline.process(decoder.decode_json(event(i, label=i % 2)))  # type: ignore[arg-type]
        assert pipeline.counts["labelled"] == (16 if i == 15 else 0)


def test_blocks_give_what_the_general_path_gives(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Clean polls go as blocks; a run with them equals one without, event for event and in state:
    labels inline, delayed labels through the label gate, events expiring as negatives, duplicates,
    bad records."""
    from stream.events import Decoder

    rng = np.random.default_rng(11)
    values, labels = [], []
    for i in range(4000):
        y = int(rng.random() < 0.05)
        delayed = i % 4 == 0 and i >= 1008  # before: every event labelled, micro-batches learn as one run
        values.append(event(i, label=None if delayed else y, c=float(rng.normal(2.0 * y, 1.0))))
        if i >= 1008 and i % 50 == 8:  # no time: it takes the latest seen (the first starts a micro-batch)
            values[-1] = orjson.dumps({**orjson.loads(values[-1]), "ts": None})
        if delayed and i % 8 == 0:  # the rest of the delayed ones time out, as negatives
            labels.append(orjson.dumps({"id": f"e{i}", "label": y, "ts": 1000.0 + i + 5}))
        if i == 1500:
            values.append(event(i - 3, c=0.5))  # a duplicate: that micro-batch goes the general way
        if i == 2600:
            values.append(b"{oops")  # and that poll
    used = []
    process_block = Pipeline.process_block

    def counted(self: Pipeline, block: object, labels: object = ()) -> object:
        result = process_block(self, block, labels)  # type: ignore[arg-type]
        used.append(result is not None)
        return result

    monkeypatch.setattr(Pipeline, "process_block", counted)
    outputs = []
    for blocks in (True, False):
        if not blocks:
            monkeypatch.setattr(Decoder, "decode_block", lambda self, records: None)
        settings = small_settings(model={"micro_batch": 48}, labels={"ttl_seconds": 60.0, "timeout_as_negative": True})
        sink, dead = MemorySink(), MemoryDeadLetters()
        ports = Ports(MemorySource(values), sink, dead, labels=MemorySource(labels, name="labels"))
        runner = Runner(Pipeline(settings), make_decoder(settings), ports, None, CommitPolicy(1000, 60.0))
        runner.run(threading.Event())
        pipeline = runner.pipeline
        outputs.append(outcome(runner, sink, dead))
        if blocks:
            assert sum(used) > 50 and not all(used)  # blocks did most, the general path the rest
            assert pipeline.counts["expired_as_negative"] > 300 and pipeline.counts["learned"] > 3000
    assert outputs[0] == outputs[1]


def test_polls_with_label_records_go_as_blocks_and_give_what_the_general_path_gives(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Label-only records among the events (a label for an event a few lines back, one for an event
    still to come, which is unknown then, one for an unknown id, a label at a poll's very start and
    end): the poll is one block with its labels at their places; results equal the general path's."""
    from stream.events import Decoder

    rng = np.random.default_rng(12)
    values: list[bytes] = []
    for i in range(3000):
        y = int(rng.random() < 0.05)
        delayed = i % 3 == 0
        c = round(float(rng.normal(2.0 * y, 1.0)), 4)  # a short number: the compiled reader reads it
        values.append(event(i, label=None if delayed else y, c=c))
        if i % 3 == 2 and i > 20:
            values.append(orjson.dumps({"id": f"e{i - 11}", "label": int(rng.random() < 0.3)}))
        if i % 97 == 0:
            values.append(orjson.dumps({"id": f"e{i + 2}", "label": 1}))  # its event comes later: unknown now
        if i % 211 == 0:
            values.append(b'{"id": "nobody", "label": 0}')
    blocks_used: list[bool] = []
    process_block = Pipeline.process_block

    def counted(self: Pipeline, block: object, labels: object = ()) -> object:
        blocks_used.append(bool(labels))
        return process_block(self, block, labels)  # type: ignore[arg-type]

    monkeypatch.setattr(Pipeline, "process_block", counted)
    outputs = []
    for blocks in (True, False):
        if not blocks:
            monkeypatch.setattr(Decoder, "decode_block", lambda self, records: None)
        for batch in (512, 37):
            monkeypatch.setattr("stream.loop.BATCH", batch)
            runner, sink, dead = run(values, model={"micro_batch": 48})
            pipeline = runner.pipeline
            outputs.append(outcome(runner, sink, dead))
        if blocks:
            assert sum(blocks_used) > 50  # blocks with labels in them did most
    assert pipeline.counts["learned"] > 1500 and len(outputs[-1][1]) > 40  # labels learned, unknown ones dead-lettered
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]


def test_a_label_after_a_refused_event_is_still_learned() -> None:
    """A part whose only event is refused (here a duplicate) still takes the labels after it (they
    were dropped, neither learned nor dead-lettered)."""
    values = [event(1, label=None), event(2, label=None), event(1, label=0), orjson.dumps({"id": "e2", "label": 1})]
    runner, sink, dead = run(values, model={"micro_batch": 2})
    assert [reason for _, reason, _ in dead.items] == ["duplicate_id"]
    assert runner.pipeline.labels_by_class == [0, 1] and len(runner.pipeline.labels) == 1  # e2 learned; e1 waits


def test_learning_steps_are_gathered_in_their_order() -> None:
    """Runs of two blocks (sharing each block's columns) and delayed labels' single steps, in any
    order, give the columns of the steps one after another; a run saved before runs shared their
    block's columns (its own six columns) loads and gathers alike."""
    import pickle

    from stream.labels import Pending
    from stream.pipeline import LearnRun, learn_columns

    rng = np.random.default_rng(3)

    def block(n: int, tag: str) -> LearnRun:
        ys = [int(v) if v < 2 else None for v in rng.integers(0, 3, n)]
        return LearnRun([f"{tag}{i}" for i in range(n)], rng.random((n, 4)), ys, rng.random(n), rng.random((2, n)) < 0.5, rng.random((3, n)))

    def single(i: int) -> tuple[Pending, int]:
        return Pending(f"p{i}", 0.0, rng.random(4), float(rng.random()), bool(i % 2), i == 1, rng.random(3)), i % 2

    a, b = block(9, "a"), block(6, "b")
    labelled = {tag: [i for i, y in enumerate(columns.ys) if y is not None] for tag, columns in (("a", a), ("b", b))}
    old = LearnRun.__new__(LearnRun)
    old.__setstate__([["o0", "o1"], rng.random((2, 4)), [1, 0], rng.random(2), np.array([True, False]), rng.random((3, 2))])
    old_single = Pending.__new__(Pending)  # saved before events had a class decision: their alert was theirs
    old_single.__setstate__((None, {"id": "q0", "ts": 0.0, "row": rng.random(4), "score": 0.5, "alert": True, "candidates": rng.random(3)}))
    steps = [a.of(labelled["a"][:2]), single(0), b.of(labelled["b"]), a.of(labelled["a"][2:]), single(1), old, single(2), (old_single, 1)]
    steps = pickle.loads(pickle.dumps(steps))  # a checkpoint between micro-batches keeps them
    expected: list[tuple[str, np.ndarray, int, float, list[bool], np.ndarray]] = []
    for step in steps:
        if isinstance(step, LearnRun):
            index = range(len(step.ids)) if step.index is None else step.index
            expected += [(step.ids[i], step.rows[i], step.ys[i], step.served[i], step.verdicts[:, i].tolist(), step.candidates[:, i]) for i in index]  # type: ignore[misc]
        else:
            p, y = step
            expected.append((p.id, p.row, y, p.score, [p.alert, p.predicted], p.candidates))
    assert expected[-4][4] == [True, True] and expected[-3][4] == [False, False] and expected[-1][4] == [True, True]  # the old forms
    ids, rows, ys, served, verdicts, scores = learn_columns(steps)
    assert ids == [e[0] for e in expected] and ys.tolist() == [e[2] for e in expected]
    assert np.array_equal(rows, np.stack([e[1] for e in expected])) and np.array_equal(scores, np.stack([e[5] for e in expected], axis=1))
    assert served.tolist() == [e[3] for e in expected] and verdicts.T.tolist() == [e[4] for e in expected]
    one = learn_columns([a.of(labelled["a"][:2]), a.of(labelled["a"][2:])])  # one block only: as the block's
    assert one[0] == [a.ids[i] for i in labelled["a"]] and np.array_equal(one[1], a.rows[labelled["a"]])
    a.ys = [1, 0, 0, 1, 0, 0, 0, 1, 0]
    gapless = learn_columns([a.of(range(1, 4)), a.of([4, 5, 6])])  # events 1 to 6 of the block
    assert gapless[0] == a.ids[1:7] and gapless[2].tolist() == a.ys[1:7] and np.array_equal(gapless[1], a.rows[1:7])
    assert np.array_equal(gapless[3], a.served[1:7]) and np.array_equal(gapless[5], a.candidates[:, 1:7])
    assert np.array_equal(gapless[4], a.verdicts[:, 1:7]) and np.array_equal(one[4], a.verdicts[:, labelled["a"]])
