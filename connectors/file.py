"""Replay from files and write results to files.

A file source's position is the byte offset of the next line, so a resume seeks exactly there. File
sinks record how many bytes are durable; on resume they cut the file back to the checkpoint's
position, so a replay's output after a crash equals that of an uninterrupted run (exactly once).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import BinaryIO

import orjson

from stream.events import Record, Scored, encode_scored
from stream.protocols import Offsets


class FileSource:
    """JSONL or CSV (chosen by the ``.csv`` suffix) as a one-partition source."""

    def __init__(self, path: Path, max_record_bytes: int = 1 << 20, name: str | None = None) -> None:
        self.path = Path(path)
        self.max_bytes = max_record_bytes
        self.name = name or self.path.name
        try:
            self.file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise FileNotFoundError(f"input file {self.path}: {exc.strerror}") from None
        self.header: tuple[str, ...] | None = None
        self.offset = 0
        self.line = 0
        self._exhausted = False
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
            self.line = -1  # unknown after a seek; origins then name the byte offset only

    def poll(self, max_records: int) -> list[Record]:
        records: list[Record] = []
        while len(records) < max_records:
            start = self.offset
            raw = self._readline()
            if not raw:
                self._exhausted = True
                break
            if self.line >= 0:
                self.line += 1
            value = raw.rstrip(b"\r\n")
            if not value.strip():
                continue  # blank lines are not records
            origin = f"{self.name}:{self.line}" if self.line >= 0 else f"{self.name}@{start}"
            records.append(Record(value, origin, 0, self.offset, self.header))
        return records

    def _readline(self) -> bytes:
        """The next line; a giant one is cut after the limit (the decoder rejects it) and skipped."""
        raw = self.file.readline(self.max_bytes + 1)
        self.offset += len(raw)
        if len(raw) > self.max_bytes and not raw.endswith(b"\n"):
            rest = raw
            while rest and not rest.endswith(b"\n"):
                rest = self.file.readline(1 << 20)
                self.offset += len(rest)
        return raw

    def commit(self, offsets: Offsets) -> None:
        pass

    def close(self) -> None:
        self.file.close()


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
            self.file: BinaryIO = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
            self.file.truncate(resume_at)
            self.file.seek(resume_at)
        else:
            self.file = open(self.path, "wb")  # noqa: SIM115
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

    def flush(self) -> None:
        pass

    def position(self) -> int:
        return 0

    def close(self) -> None:
        pass
