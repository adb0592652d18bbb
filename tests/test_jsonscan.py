"""The compiled reader of flat JSON records: orjson's values to the bit, or a give-up."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.events import Decoder, Event
from stream.jsonscan import FLOAT, INT, NULL, STRING, scan_records


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


@st.composite
def number_text(draw: st.DrawFn) -> str:
    """JSON numbers as people and programs write them: short and long digits, exponents, -0."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.one_of(st.just("0"), st.integers(1, 10**17).map(str)))
    fraction = draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=18).map(lambda d: "." + d)))
    exponent = draw(
        st.one_of(st.just(""), st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), st.integers(0, 330)).map(lambda t: f"{t[0]}{t[1]}{t[2]}"))
    )
    return sign + whole + fraction + exponent


def in_fast_path(text: str) -> bool:
    """Whether the reader must take ``text``: a mantissa below 2^53 and, with a fraction or an
    exponent, a power of ten within 10^22 either way."""
    number, _, exponent = text.lower().lstrip("-").partition("e")
    whole, _, fraction = number.partition(".")
    if int(whole + fraction) >= 2**53:
        return False
    return ("." not in text and "e" not in text.lower()) or -22 <= int(exponent or 0) - len(fraction) <= 22


@settings(max_examples=3000, deadline=None)
@given(number_text())
def test_a_number_is_orjsons_to_the_bit_or_a_give_up(text: str) -> None:
    scanned = scan_records([b'{"f": ' + text.encode() + b"}"])
    assert (scanned is not None) == in_fast_path(text), text
    if scanned is None:
        return
    expected = orjson.loads(text)
    _, names, kinds, numbers, _, _ = scanned
    assert names == ["f"] and kinds[0, 0] == (INT if isinstance(expected, int) else FLOAT)
    assert bits(numbers[0, 0]) == bits(float(expected)), (text, numbers[0, 0], expected)


@pytest.mark.parametrize("text", ["1.5", "-2.6619", "1700000000.088", "0", "-0", "-0.0", "12345", "1e5", "2.5E-3", "0.000123"])
def test_everyday_numbers_take_the_fast_path(text: str) -> None:
    scanned = scan_records([b'{"f":' + text.encode() + b"}"])
    assert scanned is not None and bits(scanned[3][0, 0]) == bits(float(orjson.loads(text)))


@pytest.mark.parametrize(
    "record",
    [
        b'{"f": 01}', b'{"f": -}', b'{"f": 1.}', b'{"f": .5}', b'{"f": 1e}', b'{"f": +1}', b'{"f": NaN}',
        b'{"f": true}', b'{"f": false}', b'{"f": nul}', b'{"f": [1]}', b'{"f": {"g": 1}}', b'{"f": 1,}',
        b'{"f": 1} x', b'{"f" 1}', b"{}", b"[1]", b'{"f": "a\\"b"}', b'{"f\\u0041": 1}', b'{"f": "a\tb"}',
        b'{"f": 0.12345678901234567}', b'{"f": 1e23}', b'{"f": 1', b'{"f": "abc}',
    ],
)  # fmt: skip
def test_anything_but_a_flat_plain_object_gives_up(record: bytes) -> None:
    assert scan_records([b'{"f": 1}', record]) is None
    assert scan_records([record]) is None


def test_records_with_other_keys_are_marked_not_read() -> None:
    def matched(*values: bytes) -> list[bool] | None:
        scanned = scan_records(list(values))
        return None if scanned is None else scanned[5].tolist()

    assert matched(b'{"f": 1, "g": 2}', b'{"f": 3, "g": 4}') == [True, True]
    assert matched(b'{"f": 1, "g": 2}', b'{"g": 3, "f": 4}') == [True, False]  # other order
    assert matched(b'{"f": 1, "g": 2}', b'{"f": 3}') == [True, False]
    assert matched(b'{"f": 1, "g": 2}', b'{"f": 3, "g": 4, "h": 5}') == [True, False]
    assert matched(b'{"f": 1, "g": 2}', b'{"id": "x", "label": true}') == [True, False]  # not read on
    assert matched(b'{"f": 1, "f": 2}') is None  # a key twice
    scanned = scan_records([b'{"id": "a"}', b'{"id": "b", "f": 1}'], template=1)
    assert scanned is not None and scanned[5].tolist() == [False, True] and scanned[1] == ["id", "f"]


def test_kinds_and_string_spans() -> None:
    scanned = scan_records([b' { "id" : "\xc3\xa9x" ,"ts":null, "f":-3 } ', b'{"id":"b","ts":2.5,"f":4}'])
    assert scanned is not None
    joined, names, kinds, numbers, spans, _ = scanned
    assert names == ["id", "ts", "f"] and kinds.tolist() == [[STRING, NULL, INT], [STRING, FLOAT, INT]]
    (a, b) = spans[0, 0]
    assert joined[a:b].decode() == "éx" and numbers[1, 1:].tolist() == [2.5, 4.0]


def random_number(rng: np.random.Generator) -> str:
    """Mostly what the fast path takes (a few digits, a short exponent), now and then beyond it."""
    if rng.random() < 0.03:
        return f"{rng.normal() * 10.0 ** rng.integers(-30, 30)!r}".replace("inf", "1")
    digits, places = int(rng.integers(0, 10**7)), int(rng.integers(0, 7))
    text = f"{digits // 10**places}.{digits % 10**places:0{places}d}" if places else str(digits)
    return ("-" if rng.random() < 0.4 else "") + text + str(rng.choice(["", "", "", "e3", "E-2", "e+1"]))


def random_record(rng: np.random.Generator) -> bytes:
    """A record of one shape, written by hand: spaces here and there, now and then a value that is
    not plain (an empty, escaped or float id, a text time, a label not 0 / 1 / null)."""
    odd = rng.random() < 0.1
    ids: list[object] = ["a", "é", "x y", "☃", 7, -12, 2**60]
    ident = rng.choice(["", 'q"', 1.5, "\n"]) if odd and rng.random() < 0.3 else ids[rng.integers(len(ids))]
    times = ["null", random_number(rng)] + (['"2024-01-01"'] if odd else [])
    labels = ["0", "1", "null"] + (["2", "1.0", '"1"', "true"] if odd else [])
    fields = [("id", orjson.dumps(ident).decode()), ("ts", str(rng.choice(times))), ("label", str(rng.choice(labels)))]
    fields += [(f"f{k}", random_number(rng)) for k in range(3)]
    space = " " if rng.random() < 0.5 else ""
    return ("{" + f",{space}".join(f'"{k}":{space}{v}' for k, v in fields) + "}").encode()


def test_a_scanned_block_is_what_decode_many_gives() -> None:
    from stream.events import Record

    rng = np.random.default_rng(5)
    blocks = 0
    for _ in range(3000):
        values = [random_record(rng) for _ in range(int(rng.integers(1, 5)))]
        block = Decoder("id", "ts", "label", max_bytes=10_000)._scanned_block(values)
        if block is None:
            continue
        blocks += 1
        events = Decoder("id", "ts", "label", max_bytes=10_000).decode_many([Record(v, "t", 0, i) for i, v in enumerate(values)])
        assert all(isinstance(e, Event) and not e.non_numeric and list(e.x) == list(block.names) for e in events), values
        assert block.ids == [e.id for e in events]  # type: ignore[union-attr]
        assert [None if t is None else bits(t) for t in block.ts] == [None if e.ts is None else bits(e.ts) for e in events]  # type: ignore[union-attr]
        assert block.ys == [e.y for e in events]  # type: ignore[union-attr]
        assert [[bits(v) for v in row] for row in block.raw.tolist()] == [[bits(float(v)) for v in e.x.values()] for e in events]  # type: ignore[union-attr]
    assert blocks > 600  # many polls are read by the compiled reader (the rest give up on purpose)


def test_ids_that_are_not_utf8_or_hold_a_raw_line_end_give_up() -> None:
    decoder = Decoder("id", "ts", "label", max_bytes=10_000)
    assert decoder._scanned_block([b'{"id": "a", "f": 1}']) is not None
    assert decoder._scanned_block([b'{"id": "a", "f": 1}', b'{"id": "\xff", "f": 1}']) is None
    # A raw line end in a string is not JSON (a Kafka record can hold one): not read as two ids.
    assert decoder._scanned_block([b'{"id": "a", "f": 1}', b'{"id": "x\ny", "f": 1}']) is None
    assert np.isfinite(1.0)
