"""Replay from files and write results to files.

A file source's position is the byte offset of the next line, so a resume seeks exactly there. File
sinks record how many bytes are durable; on resume they cut the file back to the checkpoint's
position, so a replay's output after a crash equals that of an uninterrupted run (exactly once).
"""

from __future__ import annotations

import base64
import operator
import os
from collections.abc import Sequence
from itertools import accumulate, repeat
from pathlib import Path
from typing import BinaryIO

import orjson

from stream.events import LineOrigins, Record, RecordBatch, Scored, encode_scored, encode_scored_lines
from stream.protocols import Offsets


CHUNK = 1 << 16  # bytes a file source reads at a time


class FileSource:
    """JSONL or CSV (chosen by the ``.csv`` suffix) as a one-partition source.

    Lines are read a chunk at a time and split in C; a poll hands out the lines read ahead (a
    line at a time cost a microsecond an event, a tenth of the whole replay).
    """

    def __init__(self, path: Path, max_record_bytes: int = 1 << 20, name: str | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_record_bytes
        self.name = name or self.path.name
        try:
            self.file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise FileNotFoundError(f"input file {self.path}: {exc.strerror}") from None
        self.header: tuple[str, ...] | None = None
        self.offset = 0  # of the next line not handed out
        self.line = 0
        self._exhausted = False
        self._clear_read_ahead()
        if self.path.suffix.lower() == ".csv":
            first = self.file.readline()
            self.header = tuple(h.strip() for h in first.decode("utf-8-sig").rstrip("\r\n").split(","))
            self.offset = self.file.tell()

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def seek(self, offsets: Offsets) -> None:
        if 0 in offsets:
            self.offset = max(offsets[0], self.offset)
            self.file.seek(self.offset)
            self._clear_read_ahead()
            self.line = -1  # unknown after a seek; origins then name the byte offset only

    def poll(self, max_records: int) -> RecordBatch:
        batch = self._take(max_records)
        if all(map(bytes.strip, batch.values)):
            return batch
        # Blank lines are not records: more lines take their place (a column at a time: rare).
        values: list[bytes] = []
        origins: list[str] = []
        ends: list[int] = []
        while batch.values:
            kept = [i for i, v in enumerate(batch.values) if v.strip()]
            values += [batch.values[i] for i in kept]
            origins += [batch.origins[i] for i in kept]
            ends += [batch.next_offsets[i] for i in kept]
            if len(values) == max_records:
                break
            batch = self._take(max_records - len(values))
        return RecordBatch(values, origins, 0, ends, self.header)

    def _take(self, max_records: int) -> RecordBatch:
        """The next ``max_records`` lines read ahead (fewer at the end of the file), blank ones too."""
        unread = True  # lines left in the file
        while len(self._values) - self._at < max_records and unread:
            unread = self._read_ahead()
        take = slice(self._at, self._at + max_records)
        values, ends = self._values[take], self._ends[take]
        self._at += len(values)
        self._exhausted = not unread and self._at == len(self._values)
        if not values:
            return RecordBatch([], [], 0, [], self.header)
        origins: Sequence[str]
        if self.line >= 0:
            origins = LineOrigins(self.name, self.line + 1, len(values))
            self.line += len(values)
        else:  # after a seek: the byte offset where each line starts
            origins = [f"{self.name}@{start}" for start in [self.offset, *ends[:-1]]]
        self.offset = ends[-1]
        return RecordBatch(values, origins, 0, ends, self.header)

    def _clear_read_ahead(self) -> None:
        self._values: list[bytes] = []  # lines read ahead, without their line ends
        self._ends: list[int] = []  # the byte offset after each
        self._at = 0  # the next to hand out
        self._tail = b""  # a line begun, not ended, in what was read

    def _read_ahead(self) -> bool:
        """The next chunk's complete lines after the read-ahead's rest; False at the end of the file.

        A giant line is cut after the limit (the decoder rejects it) and skipped without being held whole.
        """
        values: list[bytes] = []
        carriage_returns = False
        while not values:
            chunk = self.file.read(CHUNK)
            if not chunk:  # the last line may have no line end
                values, self._tail = ([self._tail] if self._tail else []), b""
                sizes = [len(v) for v in values]
                carriage_returns = b"\r" in b"".join(values)
                break
            data = self._tail + chunk
            carriage_returns = carriage_returns or b"\r" in data
            lines = data.split(b"\n")
            self._tail = lines.pop()
            if len(self._tail) > self.max_bytes:
                lines.append(self._tail[: self.max_bytes + 1])
                sizes = [len(v) + 1 for v in lines]
                sizes[-1] = len(self._tail) + self._skip_rest_of_line()
                values, self._tail = lines, b""
                break
            values, sizes = lines, list(map(operator.add, map(len, lines), repeat(1)))
        if not values:
            return False
        if max(sizes) > self.max_bytes + 1:
            values = [v[: self.max_bytes + 1] for v in values]
        if carriage_returns:
            values = [v.rstrip(b"\r\n") for v in values]
        rest, rest_ends = self._values[self._at :], self._ends[self._at :]
        ends = list(accumulate(sizes, initial=rest_ends[-1] if rest_ends else self.offset))[1:]
        self._values, self._ends, self._at = rest + values, rest_ends + ends, 0
        return True

    def _skip_rest_of_line(self) -> int:
        """Bytes up to and with the next line end (or the end of the file)."""
        skipped = 0
        while True:
            rest = self.file.readline(1 << 20)
            skipped += len(rest)
            if not rest or rest.endswith(b"\n"):
                return skipped

    def commit(self, offsets: Offsets) -> None:
        pass

    def close(self) -> None:
        self.file.close()


# Outputs are written a block at a time (about 10 KB of scores a micro-batch): a buffer of many
# blocks makes one system call of them (durability comes from flush at commit points, not here).
WRITE_BUFFER = 1 << 20


class _AppendFile:
    """An append-only output that knows its durable size and can be cut back to it."""

    def __init__(self, path: Path, resume_at: int | None) -> None:
        """``resume_at``: the durable size a checkpoint recorded; the file is cut back to it. A file
        that is not there (a new output path on resume) starts empty, with the events after it."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_at is not None and self.path.exists():
            size = self.path.stat().st_size
            if size < resume_at:
                raise ValueError(
                    f"{self.path}: {size} bytes, less than the {resume_at} the checkpoint made durable (cut or "
                    "replaced); give another output path, or move this one away"
                )
            self.file: BinaryIO = open(self.path, "r+b", buffering=WRITE_BUFFER)  # noqa: SIM115 - closed in close()
            self.file.truncate(resume_at)
            self.file.seek(resume_at)
        else:
            self.file = open(self.path, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115
        self.durable = self.file.tell()

    def write_line(self, line: bytes) -> None:
        self.file.write(line + b"\n")

    def flush(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.durable = self.file.tell()

    def position(self) -> int:
        return self.durable

    def close(self) -> None:
        self.flush()
        self.file.close()


class FileSink(_AppendFile):
    """Scores as JSON lines."""

    def write(self, scored: Scored) -> None:
        self.write_line(encode_scored(scored))

    def write_many(self, scored: Sequence[Scored]) -> None:
        self.file.write(encode_scored_lines(scored))


class FileDeadLetters(_AppendFile):
    """Dead letters as JSON lines: reason, detail, origin and the raw record."""

    def write(self, record: Record, reason: str, detail: str) -> None:
        try:
            raw: dict[str, str] = {"raw": record.value.decode("utf-8")}
        except UnicodeDecodeError:
            raw = {"raw_base64": base64.b64encode(record.value).decode("ascii")}
        self.write_line(orjson.dumps({"reason": reason, "detail": detail, "origin": record.origin, **raw}))


class NullSink:
    """Discards scores (``replay`` without ``--out``)."""

    def write(self, scored: Scored) -> None:
        pass

    def write_many(self, scored: Sequence[Scored]) -> None:
        pass

    def flush(self) -> None:
        pass

    def position(self) -> int:
        return 0

    def close(self) -> None:
        pass
