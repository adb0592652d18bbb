"""File connectors: byte positions, CSV, giant lines, sinks cut back on resume, labels file gate."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import orjson
import pytest

from connectors.file import FileDeadLetters, FileSink, FileSource
from connectors.memory import MemoryDeadLetters, MemorySink
from stream.app import make_decoder
from stream.events import Record, Scored
from stream.loop import CommitPolicy, Ports, Runner
from stream.pipeline import Pipeline
from tests.conftest import small_settings


def test_positions_are_next_byte_offsets_and_seek_resumes_there(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"id":1}\n\n{"id":2}\n{"id":3}\n')
    source = FileSource(path)
    first = source.poll(2)
    source.close()
    assert [r.value for r in first] == [b'{"id":1}', b'{"id":2}']
    again = FileSource(path)
    again.seek({0: first[-1].next_offset})
    assert [r.value for r in again.poll(10)] == [b'{"id":3}'] and again.exhausted
    again.close()


def test_a_giant_line_is_cut_and_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"id":1}\n' + b"x" * 5000 + b"\n" + b'{"id":2}\n')
    source = FileSource(path, max_record_bytes=100)
    records = source.poll(10)
    source.close()
    assert [len(r.value) for r in records] == [8, 101, 8]
    assert records[-1].next_offset == path.stat().st_size


def test_lines_read_a_chunk_at_a_time_are_the_lines_read_one_by_one(tmp_path: Path) -> None:
    """Lines across chunk borders, CRLF ends, blank and whitespace lines, giant lines inside a chunk and
    across several, no line end at the end: the records and positions a plain line reader gives."""
    import connectors.file

    rng = np.random.default_rng(3)
    parts = []
    for i in range(3000):
        kind = rng.integers(0, 20)
        if kind == 0:
            parts.append(b"" if rng.integers(2) else b"   ")
        elif kind == 1:
            parts.append(b"y" * int(rng.integers(150, 3 * connectors.file.CHUNK)))
        else:
            parts.append(b'{"id":%d,"f":"%s"}' % (i, b"z" * int(rng.integers(0, 90))))
    ends = [b"\r\n" if rng.integers(4) == 0 else b"\n" for _ in parts]
    data = b"".join(p + e for p, e in zip(parts, ends))[:-1]  # the last line has no line end
    path = tmp_path / "e.jsonl"
    path.write_bytes(data)
    expected, offset = [], 0
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        offset += len(raw)
        value = raw[:101].rstrip(b"\r\n")  # max_record_bytes=100: cut after 101 bytes
        if value.strip():
            expected.append((value, f"e.jsonl:{number}", offset))
    source = FileSource(path, max_record_bytes=100)
    got = []
    while not source.exhausted:
        got += [(r.value, r.origin, r.next_offset) for r in source.poll(int(rng.integers(1, 700)))]
    source.close()
    assert got == expected


def test_csv_source_carries_the_header(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("id,ts,label,a\ne1,1,0,0.5\n")
    source = FileSource(path)
    (record,) = source.poll(10)
    source.close()
    assert record.header == ("id", "ts", "label", "a")
    assert make_decoder(small_settings()).decode(record).x == {"a": 0.5}  # type: ignore[union-attr]


def test_sinks_cut_back_to_the_checkpoint_position(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "s.jsonl", None)
    sink.write(Scored("a", 1.0, 0.1, 0.0, False, False, 0.5, 1))
    sink.flush()
    kept = sink.position()
    sink.write(Scored("b", 2.0, 0.2, 0.0, False, False, 0.5, 1))
    sink.close()
    again = FileSink(tmp_path / "s.jsonl", kept)
    again.close()
    assert (tmp_path / "s.jsonl").read_bytes().count(b"\n") == 1


def test_a_resume_into_a_new_output_path_starts_it_empty_and_a_short_one_is_refused(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "new.jsonl", 4096)  # a checkpoint's position, another --out
    sink.write(Scored("e1", 1.0, 0.5, 0.0, False, False, 0.9, 1))
    sink.close()
    assert (tmp_path / "new.jsonl").read_bytes().startswith(b'{"id":"e1"')  # no hole before it
    (tmp_path / "short.jsonl").write_bytes(b"x" * 10)
    with pytest.raises(ValueError, match="short.jsonl: 10 bytes, less than the 4096"):
        FileSink(tmp_path / "short.jsonl", 4096)


def test_dead_letters_keep_undecodable_bytes(tmp_path: Path) -> None:
    dead = FileDeadLetters(tmp_path / "d.jsonl", None)
    dead.write(Record(b"\xff\xfe", "f:1", 0, 2), "invalid_encoding", "bad utf-8")
    dead.close()
    line = orjson.loads((tmp_path / "d.jsonl").read_bytes())
    assert line["raw_base64"] == "//4=" and line["reason"] == "invalid_encoding" and line["origin"] == "f:1"


def test_labels_file_is_released_in_event_time(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"id": f"e{i}", "ts": i, "label": None, "a": i}) + b"\n" for i in range(100)))
    labels = tmp_path / "l.jsonl"
    labels.write_bytes(b"".join(orjson.dumps({"id": f"e{i}", "ts": i + 5, "label": i % 2}) + b"\n" for i in range(100)))
    settings = small_settings()
    runner = Runner(
        Pipeline(settings), make_decoder(settings),
        Ports(FileSource(events), MemorySink(), MemoryDeadLetters(), FileSource(labels)), None, CommitPolicy(10**6, 1e9),
    )  # fmt: skip
    runner.run(threading.Event())
    runner.ports.source.close()
    dead = runner.ports.dead_letters
    assert isinstance(dead, MemoryDeadLetters) and dead.items == []
    assert runner.pipeline.labels_by_class == [50, 50]
    assert runner.positions["labels"] == {0: labels.stat().st_size}
    assert runner.ports.labels is not None
    runner.ports.labels.close()


def test_a_run_of_blank_lines_longer_than_polls_gives_the_records_after_it(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b'{"id":1}\n' + b"\n" * 300_000 + b'{"id":2}\n{"id":3}\n')
    source = FileSource(path)
    polled = [source.poll(2) for _ in range(2)]
    source.close()
    assert [[(r.value, r.origin) for r in batch] for batch in polled] == [
        [(b'{"id":1}', "blank.jsonl:1"), (b'{"id":2}', "blank.jsonl:300002")], [(b'{"id":3}', "blank.jsonl:300003")]
    ]
    assert source.exhausted and polled[1][0].next_offset == path.stat().st_size


def test_a_poll_is_its_records_as_columns(tmp_path: Path) -> None:
    from stream.events import RecordBatch, positions_after

    path = tmp_path / "c.jsonl"
    path.write_bytes(b"".join(b'{"id":%d}\n' % i for i in range(10)))
    source = FileSource(path)
    batch = source.poll(6)
    source.close()
    assert isinstance(batch, RecordBatch) and len(batch) == 6
    records = list(batch)
    assert [r.origin for r in records] == [f"c.jsonl:{i}" for i in range(1, 7)] and records[-1] == batch[-1] == batch[5]
    assert list(batch[2:4]) == records[2:4] and list(batch[::2]) == records[::2] and list(batch[4:]) == records[4:]
    assert positions_after(batch) == {0: records[-1].next_offset} == positions_after(records) and positions_after(batch[:0]) == {}
