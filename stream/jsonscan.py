"""A compiled reader of flat JSON records: a poll's records to columns without a Python object each.

It reads only what the common event looks like (a flat object of numbers, short strings and
nulls, every record with the same keys in the same order) and gives up on anything else: escapes,
nested values, true / false, or a number whose exact value needs more than the fast path below. A
give-up is no error: the decoder then takes the general way (orjson, record by record), which
also says what is wrong with a bad record.

Numbers are converted as every correct parser does on its fast path (Clinger): a decimal mantissa
below 2^53 times or divided by an exact power of ten up to 10^22 is one correctly rounded
operation, so a value equals orjson's to the bit. Other numbers (17 significant digits, far
exponents) give up.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# kinds[i, k] of record i's k-th value
INT, FLOAT, STRING, NULL = 0, 1, 2, 3
MAX_KEYS = 256
_MANTISSA_LIMIT = 1 << 53
_POWERS = np.array([10.0**e for e in range(23)])  # exact doubles
_QUOTE, _COLON, _COMMA, _OPEN, _CLOSE, _MINUS, _DOT = 34, 58, 44, 123, 125, 45, 46


@njit(cache=True, inline="always")
def _skip_space(buf: np.ndarray, p: int, end: int) -> int:
    while p < end and (buf[p] == 32 or buf[p] == 9 or buf[p] == 10 or buf[p] == 13):
        p += 1
    return p


@njit(cache=True, inline="always")
def _string_end(buf: np.ndarray, p: int, end: int) -> int:
    """Index of the quote that closes a string starting at ``p``; -1 for an escape, a control
    character or no end."""
    while p < end:
        c = buf[p]
        if c == _QUOTE:
            return p
        if c == 92 or c < 32:
            return -1
        p += 1
    return -1


@njit(cache=True, inline="always")
def _digit(buf: np.ndarray, p: int, end: int) -> bool:
    return p < end and 48 <= buf[p] <= 57


@njit(cache=True)
def _number(buf: np.ndarray, p: int, end: int) -> tuple[int, int, float]:
    """(position after it, INT or FLOAT, value) of the JSON number at ``p``; position -1: give up."""
    negative = buf[p] == _MINUS
    if negative:
        p += 1
    if not _digit(buf, p, end):
        return -1, 0, 0.0
    mantissa, scale, kind = 0, 0, INT
    if buf[p] == 48:  # a leading zero stands alone
        p += 1
        if _digit(buf, p, end):
            return -1, 0, 0.0
    while _digit(buf, p, end):
        mantissa = mantissa * 10 + (buf[p] - 48)
        if mantissa >= _MANTISSA_LIMIT:
            return -1, 0, 0.0
        p += 1
    if p < end and buf[p] == _DOT:
        kind, p = FLOAT, p + 1
        if not _digit(buf, p, end):
            return -1, 0, 0.0
        while _digit(buf, p, end):
            mantissa, scale, p = mantissa * 10 + (buf[p] - 48), scale - 1, p + 1
            if mantissa >= _MANTISSA_LIMIT:
                return -1, 0, 0.0
    if p < end and (buf[p] == 101 or buf[p] == 69):  # e, E
        kind, p = FLOAT, p + 1
        sign = 1
        if p < end and (buf[p] == 43 or buf[p] == _MINUS):
            sign, p = (-1 if buf[p] == _MINUS else 1), p + 1
        if not _digit(buf, p, end):
            return -1, 0, 0.0
        exponent = 0
        while _digit(buf, p, end):
            exponent, p = exponent * 10 + (buf[p] - 48), p + 1
            if exponent > 1000:
                return -1, 0, 0.0
        scale += sign * exponent
    if kind == INT:
        return p, INT, float(-mantissa if negative else mantissa)  # -0 is the integer 0
    if scale == 0:
        value = float(mantissa)
    elif 0 < scale <= 22:
        value = float(mantissa) * _POWERS[scale]
    elif -22 <= scale < 0:
        value = float(mantissa) / _POWERS[-scale]
    else:
        return -1, 0, 0.0
    return p, FLOAT, -value if negative else value


@njit(cache=True, inline="always")
def _same_bytes(buf: np.ndarray, a: int, b: int, c: int, d: int) -> bool:
    if b - a != d - c:
        return False
    for i in range(b - a):
        if buf[a + i] != buf[c + i]:
            return False
    return True


OTHER_KEYS, GIVE_UP = -2, -1  # what _read_record says of a record that is not read


@njit(cache=True)
def _read_record(
    buf: np.ndarray, p: int, end: int, r: int, keys: np.ndarray, n_keys: int, kinds: np.ndarray,
    numbers: np.ndarray, spans: np.ndarray,
) -> int:  # fmt: skip
    """Read record ``r`` (``buf[p:end]``): each value's kind, number and string span. With
    ``n_keys`` -1 its keys become ``keys``; else they must be those, in order. Returns its number of
    keys, OTHER_KEYS (not read further) or GIVE_UP."""
    p = _skip_space(buf, p, end)
    if p >= end or buf[p] != _OPEN:
        return GIVE_UP
    k = 0
    while True:
        p = _skip_space(buf, p + 1, end)
        if p >= end or buf[p] != _QUOTE:
            return GIVE_UP  # no key (an empty object too)
        q = _string_end(buf, p + 1, end)
        if q < 0 or k >= kinds.shape[1]:
            return GIVE_UP
        if n_keys < 0:
            keys[k, 0], keys[k, 1] = p + 1, q
        elif k >= n_keys or not _same_bytes(buf, p + 1, q, keys[k, 0], keys[k, 1]):
            return OTHER_KEYS
        p = _skip_space(buf, q + 1, end)
        if p >= end or buf[p] != _COLON:
            return GIVE_UP
        p = _skip_space(buf, p + 1, end)
        if p >= end:
            return GIVE_UP
        if buf[p] == _QUOTE:
            q = _string_end(buf, p + 1, end)
            if q < 0:
                return GIVE_UP
            kinds[r, k], spans[r, k, 0], spans[r, k, 1], p = STRING, p + 1, q, q + 1
        elif buf[p] == 110:  # null
            if not (p + 4 <= end and buf[p + 1] == 117 and buf[p + 2] == 108 and buf[p + 3] == 108):
                return GIVE_UP
            kinds[r, k], numbers[r, k], p = NULL, np.nan, p + 4
        else:
            p, kinds[r, k], numbers[r, k] = _number(buf, p, end)
            if p < 0:
                return GIVE_UP
        k += 1
        p = _skip_space(buf, p, end)
        if p >= end:
            return GIVE_UP
        if buf[p] == _CLOSE:
            break
        if buf[p] != _COMMA:
            return GIVE_UP
    if _skip_space(buf, p + 1, end) != end:
        return GIVE_UP
    return k if n_keys < 0 or k == n_keys else OTHER_KEYS


@njit(cache=True)
def scan(
    buf: np.ndarray, ends: np.ndarray, template: int, keys: np.ndarray, kinds: np.ndarray, numbers: np.ndarray,
    spans: np.ndarray, matched: np.ndarray,
) -> int:  # fmt: skip
    """Read the records ``buf[ends[i - 1]:ends[i]]`` (the first from 0) that have record
    ``template``'s keys in its order (``matched``: 1 for those, 0 for the others, which are not read
    further): their keys' byte spans into ``keys``, each value's kind, number and string span.
    Returns the number of keys, or -1 to give up."""
    n_keys = _read_record(buf, ends[template - 1] if template else 0, ends[template], template, keys, -1, kinds, numbers, spans)
    if n_keys < 0:
        return GIVE_UP
    start = 0
    for r in range(ends.shape[0]):
        if r == template:
            matched[r] = 1
        else:
            got = _read_record(buf, start, ends[r], r, keys, n_keys, kinds, numbers, spans)
            if got == GIVE_UP:
                return GIVE_UP
            matched[r] = got == n_keys
        start = ends[r]
    return n_keys


@njit(cache=True)
def join_spans(buf: np.ndarray, spans: np.ndarray, out: np.ndarray) -> None:
    """The bytes of each span (a row of ``spans``: start, end), each followed by a newline, into
    ``out`` (sized for them)."""
    o = 0
    for r in range(spans.shape[0]):
        for i in range(spans[r, 0], spans[r, 1]):
            out[o] = buf[i]
            o += 1
        out[o] = 10
        o += 1


def scan_records(
    values: list[bytes], template: int = 0
) -> tuple[bytes, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(the joined bytes, keys, kinds, numbers, string spans, matched) of the records with record
    ``template``'s keys (``matched``: which; the others' rows are not filled); None to give up (see
    the module), also for keys that are not UTF-8 or appear twice."""
    joined = b"".join(values)
    buf = np.frombuffer(joined, dtype=np.uint8)
    ends = np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)))
    # Room for the template's keys (a key and its value take at least 4 bytes); the others read as many.
    n, width = len(values), min(MAX_KEYS, len(values[template]) // 4 + 1)
    keys = np.empty((width, 2), dtype=np.int64)
    kinds = np.empty((n, width), dtype=np.int8)
    numbers = np.empty((n, width))
    spans = np.empty((n, width, 2), dtype=np.int64)
    matched = np.zeros(n, dtype=np.bool_)
    n_keys = scan(buf, ends, template, keys, kinds, numbers, spans, matched)
    if n_keys <= 0:
        return None
    try:
        names = [joined[a:b].decode("utf-8") for a, b in keys[:n_keys].tolist()]
    except UnicodeDecodeError:
        return None
    if len(set(names)) < n_keys:
        return None
    return joined, names, kinds[:, :n_keys], numbers[:, :n_keys], spans[:, :n_keys], matched
