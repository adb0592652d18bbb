"""Fuzzed input: bad records of every kind mixed into a valid stream never crash the loop, each is
dead-lettered with a reason, and the valid events' scores are exactly those of a clean run."""

from __future__ import annotations

import math
import threading
from dataclasses import replace

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.memory import MemoryDeadLetters, MemorySink, MemorySource
from stream.app import make_decoder
from stream.events import REASONS
from stream.loop import CommitPolicy, Ports, Runner
from stream.pipeline import Pipeline
from stream.synth import ABRUPT, event_record, generate
from tests.conftest import small_settings

STREAM = generate(replace(ABRUPT, n=400, positive_rate=0.05, seed=21))
VALID = [orjson.dumps(event_record(STREAM, i, id_prefix="v")) for i in range(len(STREAM.y))]


def _not_json(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True
    return False


bad_record = st.one_of(
    st.binary(min_size=1, max_size=200).filter(lambda b: b.strip() != b"" and b"\n" not in b and _not_json(b)),
    st.sampled_from([b"[]", b"42", b'"text"', b"null", b"{}", b'{"id": null, "f0": 1}', b'{"f0": 1.0}']),
    st.builds(lambda v: orjson.dumps({"id": "x-bad-label", "label": v, "f0": 1.0}),
              st.one_of(st.integers(2, 10**6), st.text(min_size=1).filter(lambda t: t not in ("0", "1", "true", "false", "True", "False", "null")))),
    st.builds(lambda v: orjson.dumps({"id": "x-bad-feature", "f0": v}), st.one_of(st.text(), st.lists(st.integers(-1000, 1000)), st.booleans())),
    st.builds(lambda n: orjson.dumps({"id": f"unknown-{n}", "label": 1}), st.integers(0, 10**9)),
    st.builds(lambda n: VALID[n], st.integers(0, 50)),  # duplicates of early ids
    st.builds(lambda n: b'{"id": "big", "f0": 1, "pad": "' + b"x" * n + b'"}', st.integers(70_000, 120_000)),
    st.builds(lambda t: orjson.dumps({"id": "x-ts", "ts": t, "f0": 1.0}), st.text(min_size=1).filter(lambda t: not _is_time(t))),
)  # fmt: skip


def _is_time(text: str) -> bool:
    from stream.events import Decoder

    try:
        Decoder("id", "ts", "label", 10**6)._ts(text)
    except Exception:
        return False
    return True


def run(values: list[bytes]) -> tuple[dict[str, float], list[tuple[str, str]]]:
    settings_ = small_settings()
    sink, dead = MemorySink(), MemoryDeadLetters()
    runner = Runner(Pipeline(settings_), make_decoder(settings_), Ports(MemorySource(values), sink, dead), None, CommitPolicy(10**6, 1e9))
    runner.run(threading.Event())
    return {s.id: s.score for s in sink.durable}, [(r.origin, reason) for r, reason, _ in dead.items]


CLEAN, _ = run(VALID)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.integers(60, len(VALID)), bad_record), min_size=1, max_size=60))
def test_bad_records_are_dead_lettered_and_change_nothing(bad: list[tuple[int, bytes]]) -> None:
    mixed = list(VALID)
    for position, raw in sorted(bad, key=lambda item: -item[0]):
        mixed.insert(position, raw)
    scores, dead = run(mixed)
    assert len(dead) == len(bad)
    assert all(reason in REASONS for _, reason in dead)
    assert scores.keys() == CLEAN.keys()
    assert all(scores[k] == CLEAN[k] or (math.isnan(scores[k]) and math.isnan(CLEAN[k])) for k in CLEAN)
