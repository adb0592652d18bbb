from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.events import REASONS, BadRecord, Decoder, Event, Label, Record


@pytest.fixture
def decoder() -> Decoder:
    return Decoder("id", "ts", "label", max_bytes=200)


def reason(decoder: Decoder, raw: bytes) -> str:
    with pytest.raises(BadRecord) as info:
        decoder.decode_json(raw)
    assert info.value.reason in REASONS
    return info.value.reason


def test_event_with_numeric_features_and_iso_ts(decoder: Decoder) -> None:
    event = decoder.decode_json(b'{"id": 7, "ts": "2024-01-01T00:00:01Z", "label": true, "a": 1, "b": 2.5, "m": "x"}')
    assert event == Event("7", 1704067201.0, {"a": 1.0, "b": 2.5}, 1, ("m",))


def test_label_only_record_is_a_delayed_label(decoder: Decoder) -> None:
    assert decoder.decode_json(b'{"id": "e1", "label": 0}') == Label("e1", 0)
    assert decoder.decode_json(b'{"id": "e1", "label": "true", "ts": 5}') == Label("e1", 1, 5.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"ts": 1, "a": 1}', "missing_id"),
        (b'{"id": "", "a": 1}', "missing_id"),
        (b'{"id": "x", "label": 2, "a": 1}', "bad_label"),
        (b'{"id": "x", "label": "maybe", "a": 1}', "bad_label"),
        (b'{"id": "x", "ts": "yesterday", "a": 1}', "bad_ts"),
        (b'{"id": "x", "a": 1e999}', "invalid_json"),  # JSON has no infinity: the parser refuses
        (b'{"id": "x"}', "no_features"),
        (b'{"id": "x", "a": 1, "pad": "' + b"y" * 300 + b'"}', "too_large"),
        (b'{"id": "x", "a": "\xff"}', "invalid_encoding"),
        (b'{"id": "x", "a": 1e300}', "out_of_range_feature"),
        (b'{"id": "x", "a": -2e15}', "out_of_range_feature"),
    ],
)
def test_bad_records_have_a_reason(decoder: Decoder, raw: bytes, expected: str) -> None:
    assert reason(decoder, raw) == expected


def test_non_finite_values_from_a_mapping_are_rejected(decoder: Decoder) -> None:
    with pytest.raises(BadRecord, match="non_finite_feature"):
        decoder.decode_mapping({"id": "x", "a": float("nan")}, from_text=False)


def test_csv_rows_parse_numbers_and_empty_cells(decoder: Decoder) -> None:
    header = ("id", "ts", "label", "a", "b")
    assert decoder.decode(Record(b"e1,10,1,0.5,", "f:1", 0, 1, header)) == Event("e1", 10.0, {"a": 0.5}, 1)
    assert decoder.decode(Record(b"e2,,,3,4", "f:2", 0, 2, header)) == Event("e2", None, {"a": 3.0, "b": 4.0}, None)
    with pytest.raises(BadRecord, match="non_finite"):
        decoder.decode(Record(b"e3,1,0,nan,1", "f:3", 0, 3, header))
    with pytest.raises(BadRecord, match="invalid_csv"):
        decoder.decode(Record(b"e3,1,0", "f:3", 0, 3, header))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "a", "ts": 1700000000.5, "label": 0, "f": 1.5, "g": -2}',
        b'{"id": 7, "ts": 17, "label": null, "f": 0.0}',
        b'{"id": "b", "label": 1, "f": 1e15}',
        b'{"f": 2.5, "id": "c"}',
        b'{"id": "d", "ts": 3, "label": true, "f": 1}',  # a bool label: the general path
        b'{"id": "e", "f": 1, "flag": false}',  # a bool feature: the general path (non-numeric)
    ],
)
def test_the_short_path_decodes_as_the_general_one(decoder: Decoder, raw: bytes) -> None:
    decoded = decoder.decode_json(raw)
    assert decoded == decoder.decode_mapping(orjson.loads(raw), from_text=False)
    (batch,) = decoder.decode_many([Record(raw, "t", 0, 1)])
    assert batch == decoded


def test_decode_many_keeps_bad_records_in_place(decoder: Decoder) -> None:
    records = [Record(raw, "t", 0, i) for i, raw in enumerate([b'{"id": "a", "f": 1}', b"{oops", b'{"id": "b", "f": 2}'])]
    first, bad, last = decoder.decode_many(records)
    assert isinstance(first, Event) and isinstance(last, Event) and (first.id, last.id) == ("a", "b")
    assert isinstance(bad, BadRecord) and bad.reason == "invalid_json"


def _records(*values: bytes) -> list[Record]:
    return [Record(value, "t", 0, i + 1) for i, value in enumerate(values)]


def test_a_clean_poll_decodes_as_a_block_of_the_events_decode_many_gives(decoder: Decoder) -> None:
    records = _records(
        b'{"id": "a", "ts": 1700000000.5, "label": 0, "f": 1.5, "g": -2}',
        b'{"g": 3, "id": 7, "f": 0.0, "label": null, "ts": 17}',  # other order, int id and time
        b'{"id": "b", "ts": null, "label": 1, "f": 1e15, "g": 0}',
    )
    block = decoder.decode_block(records)
    assert block is not None and block.names == ("f", "g")
    events = decoder.decode_many(records)
    assert all(isinstance(e, Event) and not e.non_numeric for e in events)
    assert block.ids == [e.id for e in events]  # type: ignore[union-attr]
    assert block.ts == [e.ts for e in events]  # type: ignore[union-attr]
    assert block.ys == [e.y for e in events]  # type: ignore[union-attr]
    assert block.raw.tolist() == [[e.x["f"], e.x["g"]] for e in events]  # type: ignore[union-attr]
    assert block.part(1, 3).ids == ["7", "b"]


PLAIN = b'{"id": "p", "ts": 1, "label": 0, "f": 1.5, "g": 2}'


@pytest.mark.parametrize(
    "other",
    [
        b'{"id": "q", "ts": 1, "label": 0, "f": true, "g": 2}',  # a bool would read as 1
        b'{"id": "q", "ts": 1, "label": 0, "f": "1.5", "g": 2}',
        b'{"id": "q", "ts": 1, "label": 0, "f": null, "g": 2}',
        b'{"id": "q", "ts": 1, "label": 0, "f": [1, 2], "g": 2}',
        b'{"id": "q", "ts": 1, "label": 0, "f": 1, "g": {"h": 2}}',
        b'{"id": "q", "ts": 1, "label": 0, "f": 1e16, "g": 2}',  # beyond max_abs_value
        b'{"id": "q", "ts": 1, "label": 0, "f": 1, "g": 2, "h": 3}',  # another field
        b'{"id": "q", "ts": 1, "label": 0, "f": 1}',  # a missing one
        b'{"id": "", "ts": 1, "label": 0, "f": 1, "g": 2}',
        b'{"id": 1.5, "ts": 1, "label": 0, "f": 1, "g": 2}',
        b'{"id": "q", "ts": "2024-01-01", "label": 0, "f": 1, "g": 2}',
        b'{"id": "q", "ts": 1, "label": 2, "f": 1, "g": 2}',
        b'{"id": "q", "ts": 1, "label": "1", "f": 1, "g": 2}',
        b'{"id": "q", "ts": 1, "label": 0, "f": 1, "g": 2, "pad": "' + b"z" * 200 + b'"}',  # too large
        b'{"id": "q", "ts": 1, "label": 0, "f": 1, "g": 2',
        b'[1, 2]',
    ],
)
def test_a_poll_with_anything_but_plain_events_is_no_block(decoder: Decoder, other: bytes) -> None:
    assert decoder.decode_block(_records(PLAIN, PLAIN.replace(b'"p"', b'"r"'))) is not None
    assert decoder.decode_block(_records(PLAIN, other)) is None
    assert decoder.decode_block(_records(other, PLAIN)) is None


def test_label_records_ride_in_a_block_at_their_places(decoder: Decoder) -> None:
    records = _records(PLAIN, b'{"id": "x", "label": 1}', PLAIN.replace(b'"p"', b'"r"'), b'{"id": "y", "label": 0, "ts": 5}')
    block = decoder.decode_block(records)
    assert block is not None and block.ids == ["p", "r"] and block.at == [0, 2]
    assert block.labels == [(1, Label("x", 1)), (3, Label("y", 0, 5.0))]


def test_csv_records_are_no_block(decoder: Decoder) -> None:
    assert decoder.decode_block([Record(b"e1,1,0,0.5", "f:1", 0, 1, ("id", "ts", "label", "a"))]) is None


_number = st.one_of(st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False))
_odd = st.one_of(st.booleans(), st.none(), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))
_value = st.one_of(_number, _number, _number, _odd)  # mostly numbers: most polls are blocks


@st.composite
def _poll(draw: st.DrawFn) -> list[dict[str, object]]:
    """Records sharing one set of fields (else no block), values mostly plain."""
    keys = draw(st.sets(st.sampled_from(["ts", "label", "f", "g"])))
    label = st.one_of(st.sampled_from([0, 1, None]), st.sampled_from([0, 1, None]), _value)
    ident = st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 9), st.sampled_from(["", 1.5]))
    return draw(st.lists(st.fixed_dictionaries({"id": ident, **{k: label if k == "label" else _value for k in keys}}), min_size=1, max_size=4))


@settings(max_examples=300, deadline=None)
@given(_poll())
def test_a_block_is_what_decode_many_gives_or_none(objs: list[dict[str, object]]) -> None:
    decoder = Decoder("id", "ts", "label", max_bytes=200)
    records = _records(*(orjson.dumps(obj) for obj in objs))
    block = decoder.decode_block(records)
    if block is None:
        return
    events = decoder.decode_many(records)
    assert all(isinstance(e, Event) and set(e.x) == set(block.names) and not e.non_numeric for e in events)
    assert (block.ids, block.ts, block.ys) == ([e.id for e in events], [e.ts for e in events], [e.y for e in events])  # type: ignore[union-attr]
    assert block.raw.tolist() == [[float(e.x[n]) for n in block.names] for e in events]  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(), st.floats(allow_nan=False, allow_infinity=False), st.floats(0, 1), st.booleans(), st.booleans(),
            st.integers(1, 10**6),
        ),
        max_size=20,
    )
)
def test_score_lines_encoded_together_are_the_lines_encoded_one_by_one(rows: list[tuple[str, float, float, bool, bool, int]]) -> None:
    """Ids with quotes, braces, ``},{"id":`` or line ends in them included."""
    from stream.events import Scored, ScoredBlock, encode_scored, encode_scored_lines

    scored = [Scored(i + '"},{"id":\n', ts, p, -p, alert, c, p / 2, version) for i, ts, p, alert, c, version in rows]
    assert encode_scored_lines(scored) == b"".join(encode_scored(s) + b"\n" for s in scored)
    # The same records as a block's columns (one model version a block): the same lines, the same records.
    for version in {v for *_, v in rows}:
        same = [s for s in scored if s.model_version == version]
        block = ScoredBlock(
            [s.id for s in same], [s.ts for s in same], [s.score for s in same], [s.anomaly for s in same],
            [s.alert for s in same], [s.predicted for s in same], [s.threshold for s in same], version,
        )  # fmt: skip
        assert encode_scored_lines(block) == encode_scored_lines(same) and list(block) == same
        assert block[1:3] == same[1:3] and block[-1] == same[-1]
