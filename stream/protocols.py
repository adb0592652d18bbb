"""The seams of the loop. Each has an in-memory implementation in ``connectors.memory``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from stream.events import Record, Scored

class DeliveryError(RuntimeError):
    """A source or sink cannot do its job (broker unreachable, messages not acknowledged).

    The loop stops without a commit point; a restart resumes from the last checkpoint.
    """


class ConnectError(RuntimeError):
    """A source or sink cannot start (no broker at the address, a topic missing): nothing ran yet."""


# Per source partition, the next offset to read (a byte offset for files, a Kafka offset).
Offsets = dict[int, int]


class Source(Protocol):
    """Where raw records come from."""

    def poll(self, max_records: int) -> Sequence[Record]:
        """Up to ``max_records`` records; none when none is ready now."""
        ...

    @property
    def exhausted(self) -> bool:
        """True when a bounded source (a file, a replay window) has nothing more."""
        ...

    def seek(self, offsets: Offsets) -> None:
        """Continue from these positions (a checkpoint's), before the first poll."""
        ...

    def commit(self, offsets: Offsets) -> None:
        """Record progress outside the checkpoint (Kafka group offsets, for lag); may do nothing."""
        ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where score messages go."""

    def write(self, scored: Scored) -> None: ...

    def write_many(self, scored: Sequence[Scored]) -> None:
        """``write`` of each, in order."""
        ...

    def flush(self) -> None:
        """Make everything written so far durable; raises if it cannot."""
        ...

    def position(self) -> int:
        """Bytes/messages made durable so far (saved in the checkpoint)."""
        ...

    def close(self) -> None: ...


class DeadLetters(Protocol):
    """Where bad records go, with their reason."""

    def write(self, record: Record, reason: str, detail: str) -> None: ...

    def flush(self) -> None: ...

    def position(self) -> int: ...

    def close(self) -> None: ...


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds, monotonic."""
        ...
