"""List-backed sources and sinks: the in-memory side of every seam, for tests and demos."""

from __future__ import annotations

from collections.abc import Sequence

from stream.events import Record, Scored
from stream.protocols import Offsets


class MemorySource:
    """Replays a list of raw byte records as one partition; offsets are list indices."""

    def __init__(self, values: list[bytes], name: str = "memory") -> None:
        self.values = values
        self.name = name
        self.next = 0
        self.committed: Offsets = {}

    @property
    def exhausted(self) -> bool:
        return self.next >= len(self.values)

    def seek(self, offsets: Offsets) -> None:
        self.next = offsets.get(0, self.next)

    def poll(self, max_records: int) -> list[Record]:
        stop = min(len(self.values), self.next + max_records)
        batch = [Record(self.values[i], f"{self.name}:{i}", 0, i + 1) for i in range(self.next, stop)]
        self.next = stop
        return batch

    def commit(self, offsets: Offsets) -> None:
        self.committed = dict(offsets)

    def close(self) -> None:
        pass


class MemorySink:
    """Keeps written scores; ``durable`` is what the last flush made safe."""

    def __init__(self) -> None:
        self.written: list[Scored] = []
        self.durable: list[Scored] = []

    def write(self, scored: Scored) -> None:
        self.written.append(scored)

    def write_many(self, scored: Sequence[Scored]) -> None:
        self.written += list(scored)

    def flush(self) -> None:
        self.durable = list(self.written)

    def position(self) -> int:
        return len(self.durable)

    def close(self) -> None:
        self.flush()


class MemoryDeadLetters:
    """Keeps (record, reason, detail) triples."""

    def __init__(self) -> None:
        self.items: list[tuple[Record, str, str]] = []

    def write(self, record: Record, reason: str, detail: str) -> None:
        self.items.append((record, reason, detail))

    def flush(self) -> None:
        pass

    def position(self) -> int:
        return len(self.items)

    def close(self) -> None:
        pass
