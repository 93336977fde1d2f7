"""Entries after the newest signed checkpoint are protected by their leaf hashes only, and
whoever can write the table can recompute those. They are anchored instead to the Kafka
records they name (topic, partition, offset; topics keep every record forever): an entry
whose bytes are not its record's, or a record named twice, is not the ledger's own.

``unanchored`` is pure; ``kafka_records`` reads the records the entries name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.projections.domain import Finding

RecordAt = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True)
class TailEntry:
    """A ledger entry after the newest checkpoint, with the record it was appended from."""

    position: int
    topic: str
    partition: int
    offset: int
    payload: bytes

    @property
    def record(self) -> RecordAt:
        return (self.topic, self.partition, self.offset)


def unanchored(entries: Sequence[TailEntry], records: Mapping[RecordAt, bytes]) -> list[Finding]:
    """Each entry that is not, byte for byte, the Kafka record it names."""
    findings: list[Finding] = []
    named: dict[RecordAt, int] = {}
    for entry in entries:
        where = f"{entry.topic} partition {entry.partition} offset {entry.offset}"
        record = records.get(entry.record)
        if entry.record in named:
            why = f"names {where}, which the entry at {named[entry.record]} names too"
        elif record is None:
            why = f"names {where}, where Kafka has no record"
        elif record != entry.payload:
            why = f"differs from the record it names ({where})"
        else:
            named[entry.record] = entry.position
            continue
        named.setdefault(entry.record, entry.position)
        findings.append(Finding(entry.position, "unanchored", f"the entry {why}"))
    return findings


async def kafka_records(
    bootstrap: str, entries: Sequence[TailEntry], timeout: float = 30.0
) -> dict[RecordAt, bytes]:
    """The values of the records ``entries`` name, read from the broker."""
    wanted: dict[TopicPartition, tuple[int, int]] = {}
    for entry in entries:
        tp = TopicPartition(entry.topic, entry.partition)
        low, high = wanted.get(tp, (entry.offset, entry.offset))
        wanted[tp] = (min(low, entry.offset), max(high, entry.offset))
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await _read(consumer, wanted, timeout)
    finally:
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer, wanted: dict[TopicPartition, tuple[int, int]], timeout: float
) -> dict[RecordAt, bytes]:
    consumer.assign(list(wanted))
    ends = await consumer.end_offsets(list(wanted))
    for tp, (low, _) in wanted.items():
        consumer.seek(tp, low)
    # a partition is done at its highest wanted offset, or at its end (the record is absent)
    pending = {tp: min(high + 1, ends[tp]) for tp, (_, high) in wanted.items()}
    found: dict[RecordAt, bytes] = {}
    deadline = time.monotonic() + timeout
    while not await _done(consumer, pending):
        if time.monotonic() > deadline:
            raise TimeoutError("the Kafka records the ledger's newest entries name")
        batch = await consumer.getmany(timeout_ms=500, max_records=2000)
        for tp, records in batch.items():
            for record in records:
                if record.offset < pending[tp] and record.value is not None:
                    found[(tp.topic, tp.partition, record.offset)] = record.value
        await asyncio.sleep(0)
    return found


async def _done(consumer: AIOKafkaConsumer, pending: Mapping[TopicPartition, int]) -> bool:
    for tp, stop in pending.items():
        if await consumer.position(tp) < stop:
            return False
    return True
