"""A window of a topic as a bounded source: ``skewstream replay --kafka-topic``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from connectors.kafka import _connect, _record, client_config
from stream.config import KafkaSettings
from stream.events import Record
from stream.protocols import ConnectError, Offsets


class KafkaRange:
    """A window of a topic (offsets or times) as a bounded source, for ``replay --kafka-topic``.

    Partitions are assigned by hand (no group, no commits): replaying never disturbs the live group.
    """

    def __init__(
        self,
        k: KafkaSettings,
        topic: str,
        from_offset: int | None = None,
        from_time: datetime | None = None,
        to_time: datetime | None = None,
    ) -> None:
        self.k = k
        self.consumer = _connect(
            "consumer", k, lambda: KafkaConsumer(**client_config(k), group_id=None, enable_auto_commit=False, **k.consumer)
        )
        partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            self.consumer.close()
            raise ConnectError(f"--kafka-topic: topic '{topic}' does not exist on {k.bootstrap_servers}; check the name")
        self.tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self.tps)
        self.end = self._bound(to_time, self.consumer.end_offsets(self.tps))
        self.start = self._start(from_offset, from_time)
        for tp, offset in self.start.items():
            self.consumer.seek(tp, offset)
        self.next = dict(self.start)

    def _at(self, moment: datetime) -> dict[Any, int | None]:
        found = self.consumer.offsets_for_times({tp: int(moment.timestamp() * 1000) for tp in self.tps})
        return {tp: (hit.offset if hit is not None else None) for tp, hit in found.items()}

    def _bound(self, to_time: datetime | None, ends: dict[Any, int]) -> dict[Any, int]:
        if to_time is None:
            return dict(ends)
        return {tp: (o if o is not None else ends[tp]) for tp, o in self._at(to_time).items()}

    def _start(self, from_offset: int | None, from_time: datetime | None) -> dict[Any, int]:
        begin = self.consumer.beginning_offsets(self.tps)
        if from_time is not None:
            return {tp: (o if o is not None else self.end[tp]) for tp, o in self._at(from_time).items()}
        if from_offset is not None:
            return {tp: max(begin[tp], from_offset) for tp in self.tps}
        return dict(begin)

    @property
    def exhausted(self) -> bool:
        return all(self.next[tp] >= self.end[tp] for tp in self.tps)

    def poll(self, max_records: int) -> list[Record]:
        if self.exhausted:
            return []
        batches = self.consumer.poll(timeout_ms=self.k.poll_timeout_ms, max_records=max_records)
        out: list[Record] = []
        for tp in sorted(batches, key=lambda t: t.partition):
            for msg in batches[tp]:
                if msg.offset < self.end[tp]:
                    out.append(_record(msg))
                self.next[tp] = max(self.next[tp], msg.offset + 1)
            if self.next[tp] >= self.end[tp]:
                self.consumer.pause(tp)
        return out

    def seek(self, offsets: Offsets) -> None:
        for tp in self.tps:
            if tp.partition in offsets:
                self.consumer.seek(tp, offsets[tp.partition])
                self.next[tp] = offsets[tp.partition]

    def commit(self, offsets: Offsets) -> None:
        pass

    def close(self) -> None:
        self.consumer.close(autocommit=False)
