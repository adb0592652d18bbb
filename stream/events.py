"""What flows through the loop: raw records in, events and labels decoded, scores out.

Decoding is the input boundary: anything wrong with a record raises :class:`BadRecord` with a
short, bounded ``reason`` (a metric label) and a human ``detail``; the loop sends it to the dead
letters and goes on.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import repeat
from operator import itemgetter
from typing import Any, overload

import numpy as np
import orjson

from stream import jsonscan


# The per-event types are slotted but not frozen: frozen=True costs about a microsecond per object
# (object.__setattr__ per field), a tenth of an event's whole budget. Nothing mutates them.
@dataclass(slots=True)
class Record:
    """Raw bytes from a source, and where they came from.

    ``partition``/``next_offset`` is the source position *after* this record: once the record is
    processed, that is where a restart resumes (bytewax's snapshot rule: store the next offset).
    ``header`` is the CSV header for CSV records, None for JSON.
    """

    value: bytes
    origin: str
    partition: int
    next_offset: int
    header: tuple[str, ...] | None = None


@dataclass(slots=True)
class RecordBatch(Sequence[Record]):
    """A poll of one partition's records as columns (a file's lines): the decoder reads the values
    column, and a ``Record`` exists only where one is asked for (a bad record's dead letter, the
    general decoding path). Making every record an object cost a third of a microsecond an event."""

    values: list[bytes]
    origins: Sequence[str]
    partition: int
    next_offsets: list[int]
    header: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, i: int) -> Record: ...

    @overload
    def __getitem__(self, i: slice) -> RecordBatch: ...

    def __getitem__(self, i: int | slice) -> Record | RecordBatch:
        if isinstance(i, slice):
            return RecordBatch(self.values[i], self.origins[i], self.partition, self.next_offsets[i], self.header)
        return Record(self.values[i], self.origins[i], self.partition, self.next_offsets[i], self.header)

    def __iter__(self) -> Iterator[Record]:
        n = len(self.values)
        return map(Record, self.values, self.origins, repeat(self.partition, n), self.next_offsets, repeat(self.header, n))


@dataclass(frozen=True, slots=True)
class LineOrigins(Sequence[str]):
    """The origins ``name:line`` of ``lines`` consecutive lines from ``first``, made when asked."""

    name: str
    first: int
    lines: int

    def __len__(self) -> int:
        return self.lines

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...

    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            start, stop, step = i.indices(self.lines)
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            return LineOrigins(self.name, self.first + start, max(0, stop - start))
        j = i + self.lines if i < 0 else i
        if not 0 <= j < self.lines:
            raise IndexError(i)
        return f"{self.name}:{self.first + j}"

    def __iter__(self) -> Iterator[str]:
        return map(f"{self.name}:".__add__, map(str, range(self.first, self.first + self.lines)))


def positions_after(records: Sequence[Record]) -> dict[int, int]:
    """Per partition, the position after the last of ``records`` (where a restart resumes)."""
    if isinstance(records, RecordBatch):
        return {records.partition: records.next_offsets[-1]} if records.values else {}
    return {record.partition: record.next_offset for record in records}


@dataclass(slots=True)
class Event:
    """A decoded event: numeric fields in ``x``; ``y`` is None when the label comes later."""

    id: str
    ts: float | None
    x: dict[str, float]
    y: int | None
    non_numeric: tuple[str, ...] = ()


@dataclass(slots=True)
class EventBlock:
    """Plain events decoded together (a clean poll): what their ``Event`` objects would hold, as
    columns, so the hot path makes no object per event. ``raw[i, j]`` is event i's ``names[j]``.

    A poll may also hold label-only records: ``labels`` (record index, label) in order, and ``at``
    the record index of each event (None: event i is record i)."""

    ids: list[str]
    ts: list[float | None]
    ys: list[int | None]
    names: tuple[str, ...]
    raw: np.ndarray
    at: list[int] | None = None
    labels: list[tuple[int, Label]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def part(self, start: int, end: int) -> EventBlock:
        """Events ``start`` to ``end`` (without the poll's labels)."""
        return EventBlock(self.ids[start:end], self.ts[start:end], self.ys[start:end], self.names, self.raw[start:end])


@dataclass(slots=True)
class Label:
    """A delayed label for an event scored earlier (``ts``: when it became known, if said)."""

    id: str
    y: int
    ts: float | None = None


@dataclass(slots=True)
class Scored:
    """What the service says about one event."""

    id: str
    ts: float
    score: float
    anomaly: float
    alert: bool  # the operator's queue: above the alert cut (the budget's share of events)
    predicted: bool  # the class decision: above the balanced cut (best G-mean on recent labels)
    threshold: float  # the alert cut
    model_version: int


@dataclass(slots=True)
class ScoredBlock(Sequence[Scored]):
    """The ``Scored`` records of a run of events as columns: the run's outputs are encoded from
    them, and a ``Scored`` object exists only where one is asked for."""

    ids: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    anomalies: list[float] = field(default_factory=list)
    alerts: list[bool] = field(default_factory=list)
    predicted: list[bool] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    model_version: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, i: int) -> Scored: ...

    @overload
    def __getitem__(self, i: slice) -> list[Scored]: ...

    def __getitem__(self, i: int | slice) -> Scored | list[Scored]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        v = self.model_version
        return Scored(
            self.ids[i], self.ts[i], self.scores[i], self.anomalies[i], self.alerts[i], self.predicted[i], self.thresholds[i], v
        )  # fmt: skip

    def objects(self) -> list[dict[str, Any]]:
        """Each record as the dict ``encode_scored`` writes."""
        v = self.model_version
        return [
            {"id": i, "ts": t, "score": p, "anomaly": a, "alert": alert, "predicted": c, "threshold": cut, "model_version": v}
            for i, t, p, a, alert, c, cut in zip(
                self.ids, self.ts, self.scores, self.anomalies, self.alerts, self.predicted, self.thresholds
            )
        ]  # fmt: skip


class BadRecord(Exception):
    """A record that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# Every dead-letter reason (bounded: these are metric label values).
REASONS = (
    "too_large",
    "invalid_encoding",
    "invalid_json",
    "invalid_csv",
    "not_an_object",
    "missing_id",
    "duplicate_id",
    "bad_ts",
    "bad_label",
    "bad_feature",
    "non_finite_feature",
    "out_of_range_feature",
    "no_features",
    "unknown_label_id",
)

_LABELS: dict[Any, int | None] = {
    0: 0, 1: 1, False: 0, True: 1, None: None,
    "0": 0, "1": 1, "true": 1, "false": 0, "True": 1, "False": 0, "": None, "null": None,
}  # fmt: skip


_PLAIN_NUMBERS = {float, int}  # not bool: a subclass of int, but no feature value


SCAN_RETRY = 32  # polls the decoder waits before it tries the compiled reader again after a give-up


class Decoder:
    """Turns records into :class:`Event` / :class:`Label`; stateless apart from its settings (and
    when it next tries the compiled reader, which changes no result)."""

    def __init__(
        self, id_field: str, ts_field: str, label_field: str, max_bytes: int, max_abs_value: float = 1e15
    ) -> None:
        self.id_field = id_field
        self.ts_field = ts_field
        self.label_field = label_field
        self.max_bytes = max_bytes
        self.max_abs_value = max_abs_value
        self.meta_fields = (id_field, ts_field, label_field)  # every other field is a feature
        self._scan_after = 0  # polls to go before the compiled reader is tried again

    def decode(self, record: Record) -> Event | Label:
        if record.header is not None:
            return self.decode_csv(record.value, record.header)
        return self.decode_json(record.value)

    def decode_many(self, records: Sequence[Record]) -> list[Event | Label | BadRecord]:
        """``decode`` of each record in order; a bad one gives its ``BadRecord`` in its place."""
        out: list[Event | Label | BadRecord] = []
        for record in records:
            try:
                out.append(self.decode(record))
            except BadRecord as bad:
                out.append(bad)
        return out

    def decode_block(self, records: Sequence[Record]) -> EventBlock | None:
        """The records as one block when each is a plain JSON event (see ``_plain_event``) with the
        same fields, or (where the compiled reader reads them) a label-only record; None otherwise,
        and ``decode_many`` then gives each record its exact result.

        The checks are column-wise: a field that is not a number leaves a non-float array. A JSON
        ``true`` / ``false`` anywhere (numpy would read it as 1 / 0) also sends the poll the general
        way: booleans are not features, and rare.
        """
        if not records or records[0].header is not None:
            return None
        values = records.values if isinstance(records, RecordBatch) else [record.value for record in records]
        if max(map(len, values)) > self.max_bytes:
            return None
        if self._scan_after == 0:
            block = self._scanned_block(values)
            if block is not None:
                return block
            self._scan_after = SCAN_RETRY
        else:
            self._scan_after -= 1
        joined = b"\n".join(values)
        if b"true" in joined or b"false" in joined:
            return None
        try:
            objs = [orjson.loads(value) for value in values]
        except orjson.JSONDecodeError:
            return None
        first = objs[0]
        if type(first) is not dict:
            return None
        keys = first.keys()
        if not all(type(obj) is dict and obj.keys() == keys for obj in objs):
            return None
        names = tuple(k for k in first if k not in self.meta_fields)
        ids, ts, ys = ([obj.get(name) for obj in objs] for name in self.meta_fields)
        raw = _number_columns(objs, names)
        if raw is None or not (np.abs(raw).max() <= self.max_abs_value) or not _plain_meta(ids, ts, ys):
            return None
        return EventBlock([str(i) for i in ids], [None if t is None else float(t) for t in ts], ys, names, raw)

    def _scanned_block(self, values: list[bytes]) -> EventBlock | None:
        """``decode_block`` by the compiled reader (``stream.jsonscan``): no object per record but
        its id; None where it gives up or the block is not plain (then orjson's way decides). The
        records without the events' keys must be labels (decoded one by one); events are the long
        records, so the longest of the first few sets the keys."""
        template = max(range(min(8, len(values))), key=lambda i: len(values[i]))
        scanned = jsonscan.scan_records(values, template)
        if scanned is None:
            return None
        joined, names, kinds, numbers, spans, matched = scanned
        labels: list[tuple[int, Label]] = []
        at: list[int] | None = None
        if not matched.all():
            for r in np.flatnonzero(~matched).tolist():
                try:
                    label = self.decode_json(values[r])
                except BadRecord:
                    return None
                if not isinstance(label, Label):
                    return None
                labels.append((r, label))
            rows = np.flatnonzero(matched)
            kinds, numbers, spans, at = kinds[rows], numbers[rows], spans[rows], rows.tolist()
        column = {name: j for j, name in enumerate(names)}
        features = [j for j, name in enumerate(names) if name not in self.meta_fields]
        if not features or not (kinds[:, features] <= jsonscan.FLOAT).all():
            return None
        raw = numbers[:, features]
        if not (np.abs(raw).max() <= self.max_abs_value):
            return None
        ids = _scanned_ids(joined, kinds, numbers, spans, column.get(self.id_field))
        ts = _scanned_times(kinds, numbers, column.get(self.ts_field))
        ys = _scanned_labels(kinds, numbers, column.get(self.label_field))
        if ids is None or ts is None or ys is None:
            return None
        return EventBlock(ids, ts, ys, tuple(names[j] for j in features), raw, at, labels)

    def decode_json(self, raw: bytes) -> Event | Label:
        self._check_size(raw)
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = "invalid_encoding" if "utf-8" in str(exc).lower() else "invalid_json"
            raise BadRecord(reason, str(exc)) from None
        event = self._plain_event(obj)
        if event is not None:
            return event
        if not isinstance(obj, dict):
            raise BadRecord("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
        return self.decode_mapping(obj, from_text=False)

    def _plain_event(self, obj: Any) -> Event | None:
        """The common JSON record in a few C-level checks: a string (or integer) id, a 0 / 1 / null
        label, a finite number or no time, and every other field a plain number within range.
        None for anything else, which then takes the general path (and its exact error)."""
        if type(obj) is not dict:
            return None
        x = dict(obj)
        event_id, ts, y = x.pop(self.id_field, None), x.pop(self.ts_field, None), x.pop(self.label_field, None)
        if type(event_id) is int:
            event_id = str(event_id)
        plain = (
            type(event_id) is str and event_id != "" and bool(x)
            and (y is None or (type(y) is int and (y == 0 or y == 1)))
            and (ts is None or ((type(ts) is float or type(ts) is int) and math.isfinite(ts)))
            and set(map(type, x.values())) <= _PLAIN_NUMBERS and max(map(abs, x.values())) <= self.max_abs_value
        )  # fmt: skip
        return Event(event_id, None if ts is None else float(ts), x, y, ()) if plain else None

    def decode_csv(self, raw: bytes, header: tuple[str, ...]) -> Event | Label:
        self._check_size(raw)
        try:
            rows = list(csv.reader([raw.decode("utf-8").rstrip("\r\n")]))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadRecord("invalid_csv", str(exc)) from None
        row = rows[0] if rows else []
        if len(row) != len(header):
            raise BadRecord("invalid_csv", f"{len(row)} fields, header has {len(header)}")
        obj = {k: v for k, v in zip(header, row) if v != ""}
        return self.decode_mapping(obj, from_text=True)

    def decode_mapping(self, obj: dict[str, Any], from_text: bool) -> Event | Label:
        """Decode a flat mapping; ``from_text`` parses numbers written as strings (CSV)."""
        event_id = self._id(obj.get(self.id_field))
        y = self._label(obj.get(self.label_field))
        x: dict[str, float] = {}
        non_numeric: list[str] = []
        for key, value in obj.items():
            if key in self.meta_fields:
                continue
            number = _number(value, from_text)
            if number is None:
                non_numeric.append(key)
            elif not math.isfinite(number):
                raise BadRecord("non_finite_feature", f"feature '{key}' is {value!r}")
            elif abs(number) > self.max_abs_value:  # its square would overflow the running variance
                raise BadRecord("out_of_range_feature", f"feature '{key}' is {value!r}, beyond input.max_abs_value")
            else:
                x[key] = number
        if not x and not non_numeric:
            if y is None:
                raise BadRecord("no_features", "record has neither features nor a label")
            return Label(event_id, y, self._ts(obj.get(self.ts_field)))
        return Event(event_id, self._ts(obj.get(self.ts_field)), x, y, tuple(non_numeric))

    def _check_size(self, raw: bytes) -> None:
        if len(raw) > self.max_bytes:
            raise BadRecord("too_large", f"{len(raw)} bytes > input.max_record_bytes={self.max_bytes}")

    def _id(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise BadRecord("missing_id", f"field '{self.id_field}' missing or not a string/int")
        return str(value)

    def _label(self, value: Any) -> int | None:
        try:
            return _LABELS[value]
        except (KeyError, TypeError):
            raise BadRecord("bad_label", f"field '{self.label_field}'={value!r} not in 0|1|true|false|null") from None

    def _ts(self, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
                return moment.timestamp()
        raise BadRecord("bad_ts", f"field '{self.ts_field}'={value!r} is not seconds or ISO-8601")


def _number_columns(objs: list[dict[str, Any]], names: tuple[str, ...]) -> np.ndarray | None:
    """The ``names`` fields of every object as a float matrix; None unless all are plain numbers."""
    if not names:
        return None
    take = itemgetter(*names)
    try:
        raw = np.array([take(obj) for obj in objs])
    except ValueError:  # nested values of unequal shapes
        return None
    # One name: itemgetter gives the value itself, so a list value would pass for a row.
    if raw.dtype.kind not in "fi" or raw.shape != ((len(objs),) if len(names) == 1 else (len(objs), len(names))):
        return None
    return raw.astype(np.float64).reshape(len(objs), len(names))


def _scanned_ids(joined: bytes, kinds: np.ndarray, numbers: np.ndarray, spans: np.ndarray, j: int | None) -> list[str] | None:
    """Non-empty strings or integers (as orjson gives them: str of the int), else None."""
    if j is None:
        return None
    if (kinds[:, j] == jsonscan.STRING).all():
        bounds = spans[:, j]
        lengths = bounds[:, 1] - bounds[:, 0]
        if not lengths.all():
            return None
        # One decode of the ids joined by line ends, split: a string read by the scanner has no
        # line end in it (it gives up on escapes; a raw one is not JSON), checked by the count.
        lines = np.empty(int(lengths.sum()) + len(lengths), dtype=np.uint8)
        jsonscan.join_spans(np.frombuffer(joined, dtype=np.uint8), bounds, lines)
        try:
            ids = lines.tobytes().decode("utf-8").split("\n")[:-1]
        except UnicodeDecodeError:
            return None
        return ids if len(ids) == len(lengths) else None
    if (kinds[:, j] == jsonscan.INT).all():
        return [str(int(v)) for v in numbers[:, j].tolist()]
    return None  # mixed, or floats / nulls (not plain; orjson's way decides)


def _scanned_times(kinds: np.ndarray, numbers: np.ndarray, j: int | None) -> list[float | None] | None:
    if j is None:
        return [None] * kinds.shape[0]
    column = kinds[:, j]
    if (column <= jsonscan.FLOAT).all():
        return numbers[:, j].tolist()  # type: ignore[no-any-return]
    if ((column <= jsonscan.FLOAT) | (column == jsonscan.NULL)).all():
        return [None if k == jsonscan.NULL else v for k, v in zip(column.tolist(), numbers[:, j].tolist())]
    return None


def _scanned_labels(kinds: np.ndarray, numbers: np.ndarray, j: int | None) -> list[int | None] | None:
    if j is None:
        return [None] * kinds.shape[0]
    column, values = kinds[:, j], numbers[:, j]
    integer = column == jsonscan.INT
    if not (((values == 0) | (values == 1)) & integer | (column == jsonscan.NULL)).all():
        return None
    if integer.all():
        return values.astype(np.int64).tolist()  # type: ignore[no-any-return]
    return [int(v) if k == jsonscan.INT else None for k, v in zip(column.tolist(), values.tolist())]


def _plain_meta(ids: list[Any], ts: list[Any], ys: list[Any]) -> bool:
    """A non-empty string or integer id, a finite number or no time, a 0 / 1 / null label (no bool:
    the block has none)."""
    return (
        all(type(i) is str and i != "" or type(i) is int for i in ids)
        and all(t is None or (type(t) is float or type(t) is int) and math.isfinite(t) for t in ts)
        and all(y is None or type(y) is int and (y == 0 or y == 1) for y in ys)
    )


def _number(value: Any, from_text: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if from_text and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _scored_object(scored: Scored) -> dict[str, Any]:
    return {
        "id": scored.id,
        "ts": scored.ts,
        "score": scored.score,
        "anomaly": scored.anomaly,
        "alert": scored.alert,
        "predicted": scored.predicted,
        "threshold": scored.threshold,
        "model_version": scored.model_version,
    }


def encode_scored(scored: Scored) -> bytes:
    """One JSON line of the scores output (also the Kafka score message value)."""
    return orjson.dumps(_scored_object(scored))


def encode_scored_lines(scored: Sequence[Scored]) -> bytes:
    """``encode_scored`` of each, a line each ("\\n" after each), in one encoder call: the objects
    are encoded as one JSON array whose separators become line ends. ``},{"id":`` can only be a
    separator: inside a JSON string its quotes would be escaped."""
    if not scored:
        return b""
    array = orjson.dumps(scored.objects() if isinstance(scored, ScoredBlock) else [_scored_object(s) for s in scored])
    return array[1:-1].replace(b'},{"id":', b'}\n{"id":') + b"\n"
