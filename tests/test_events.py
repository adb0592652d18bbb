from __future__ import annotations

import orjson
import pytest

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
