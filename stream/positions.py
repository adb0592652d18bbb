"""Per-partition positions in a directory shared by the processes of one consumer group.

Each process checkpoints its own state; these small files say, per topic-partition, the next offset
whose effects are *not* in any checkpoint. They are written (atomically) right after a process's
checkpoint, so when a partition moves to another process — a rebalance, a crash — the new owner
seeks to where the old one's checkpoint ended instead of to a Kafka commit that may lag or lead.
"""

from __future__ import annotations

import os
from pathlib import Path

from stream.protocols import Offsets


class PositionStore:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, topic: str, partition: int) -> Path:
        return self.dir / f"{topic}.{partition}"

    def save(self, topic: str, offsets: Offsets) -> None:
        for partition, offset in offsets.items():
            path = self._path(topic, partition)
            tmp = path.with_suffix(path.suffix + ".tmp")
            with open(tmp, "w") as out:
                out.write(str(offset))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)

    def load(self, topic: str, partitions: list[int]) -> Offsets:
        found: Offsets = {}
        for partition in partitions:
            path = self._path(topic, partition)
            if path.exists():
                found[partition] = int(path.read_text())
        return found
