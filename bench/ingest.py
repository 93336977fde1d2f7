"""Ingest rate: the real ingest path against moving the same bytes from Kafka to PostgreSQL.

    python -m bench.ingest [--events 20000] [--batch-size 500] [--backlog-batch-size 2000]

N enrollment events are produced to a fresh topic (3 partitions), then:

- baseline: a plain aiokafka consumer reads all N records and one asyncpg
  ``copy_records_to_table`` writes them, with the ledger's columns (event fields taken
  from the produced events, not parsed; a constant leaf), into an unconstrained scratch
  table;
- ingester, views off: ``Ingester.run`` (real ``parse``, ``LedgerStore.append`` per batch
  in one transaction, larger batches while a full one shows a backlog, leaves, a signed
  checkpoint every 100 entries, Kafka offset commits; no ``on_appended``) from the topic's
  start until the ledger holds N entries;
- ingester, views on: the same into a second fresh ledger, with the views kept up after
  each batch as in production (``on_appended=ViewStore.catch_up``), until the ledger and
  the views hold N entries;
- parse only: ``parse`` of the N consumed records, in memory (to attribute the cost).
"""

from __future__ import annotations

import asyncio
import time
from typing import TypeAlias
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import (
    LEDGER_COLUMNS,
    Measurement,
    bench_settings,
    execute,
    fresh_schema,
    parser,
    progress,
    report,
    timed_call,
)
from bench.events import enrollment_events
from services.projections.__main__ import known_contracts
from services.projections.ingest import Ingester, IngestOptions, Parser
from services.projections.ledger import LedgerStore
from services.projections.views import ViewStore
from shared.clinical import STUDY  # the first study's calendar: these ledgers are its
from shared.kernel.envelope import CloudEvent
from shared.kernel.settings import ServiceSettings
from shared.web.runner import settle_heap

Record: TypeAlias = ConsumerRecord[bytes, bytes]
SCRATCH = "scratch_entries"
NO_LEAF = bytes(32)
SCRATCH_SQL = f"CREATE TABLE {SCRATCH} (LIKE ledger_entries INCLUDING DEFAULTS)"


async def produce(settings: ServiceSettings, events: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(settings.topic, value=e.to_kafka_value(), key=e.kafka_key())
            for e in events
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def event_fields(events: list[CloudEvent]) -> dict[bytes, tuple[object, ...]]:
    """The ledger columns that come from the event, by record value (made before timing)."""
    return {e.to_kafka_value(): _fields(e) for e in events}


def _fields(e: CloudEvent) -> tuple[object, ...]:
    record_id, version = UUID(str(e.data["record_id"])), int(e.data["version"])
    return (e.id, e.source, e.type, e.subject, record_id, version, e.time, e.recordedtime)


async def consume(settings: ServiceSettings, count: int) -> list[Record]:
    """Every record of the topic, read from its start by a plain consumer (no group)."""
    consumer = AIOKafkaConsumer(
        settings.topic,
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records: list[Record] = []
        while len(records) < count:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def scratch_table(settings: ServiceSettings) -> None:
    """The baseline's table: the ledger's columns, NOT NULL only (no key, no index)."""
    shape = LedgerStore(settings.database)
    await shape.open()  # creates the ledger's tables, which the scratch table is LIKE
    await shape.close()
    await execute(settings.database, SCRATCH_SQL)


async def baseline(
    settings: ServiceSettings, fields: dict[bytes, tuple[object, ...]], count: int
) -> tuple[Measurement, list[Record]]:
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        start = time.perf_counter()
        records = await consume(settings, count)
        rows = [
            (i, *fields[r.value or b""], r.topic, r.partition, r.offset, r.value, NO_LEAF)
            for i, r in enumerate(records, 1)
        ]
        await connection.copy_records_to_table(
            SCRATCH, records=rows, columns=LEDGER_COLUMNS, schema_name=settings.database.schema
        )
        seconds = time.perf_counter() - start
    finally:
        await connection.close()
    return Measurement("baseline: consume + one COPY", count, seconds), records


async def ingester(
    settings: ServiceSettings, count: int, options: IngestOptions, views: bool
) -> Measurement:
    """Ingest the topic into a fresh ledger (in a schema of its own) until it, and the views
    if ``views``, hold ``count`` entries; checks it holds them all and no dead letter."""
    async with fresh_schema(settings) as fresh:
        ledger = LedgerStore(fresh.database)
        await ledger.open()
        try:
            measured = await _ingest(ledger, fresh, count, options, views)
            await check(ledger, count)
        finally:
            await ledger.close()
    return measured


async def _ingest(
    ledger: LedgerStore, settings: ServiceSettings, count: int, options: IngestOptions, views: bool
) -> Measurement:
    viewed = [0 if views else count]  # entries the views hold

    async def catch_up() -> None:
        viewed[0] += await ViewStore(ledger.pool, ledger.schema, STUDY).catch_up()

    ingest = Ingester(
        ledger,
        settings.kafka_bootstrap,
        [settings.topic],
        known_contracts(),
        Ed25519PrivateKey.generate(),
        options,
        on_appended=catch_up if views else None,
    )
    stopping = asyncio.Event()
    start = time.perf_counter()
    task = asyncio.create_task(ingest.run(stopping))
    try:
        # the frontier grows once each batch has committed, the views once they caught up
        while ingest.frontier.size < count or viewed[0] < count:
            if task.done():
                task.result()
                raise RuntimeError("the ingester stopped early")
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - start
    finally:
        stopping.set()
        await task
    sizes = f"{options.batch_size}/{options.backlog_batch_size}"  # caught up / in a backlog
    name = f"ingester (batches of {sizes}, views {'on' if views else 'off'})"
    return Measurement(name, count, seconds)


async def run(count: int, options: IngestOptions) -> None:
    progress(f"making {count} enrollment events")
    events = enrollment_events(count)
    fields = event_fields(events)
    async with bench_settings(topic=True) as settings:
        progress(f"producing to {settings.topic}; schema {settings.database.schema}")
        await produce(settings, events)
        await scratch_table(settings)
        settle_heap()  # the events made: as a service's start-up heap, never walked
        base, records = await baseline(settings, fields, count)
        settle_heap()  # the records read, likewise
        progress("ingesting, views off")
        off = await ingester(settings, count, options, views=False)
        progress("ingesting, views on")
        on = await ingester(settings, count, options, views=True)
    parsing = timed_call("parse only (in memory)", count, lambda: parse_all(records))
    report("ingest", base, [off, on, parsing])


def parse_all(records: list[Record]) -> int:
    parser = Parser(known_contracts())
    return len([parser.parse(r) for r in records])


async def check(ledger: LedgerStore, count: int) -> None:
    size, dead = await ledger.size(), await ledger.dead_letters()
    if size != count or dead:
        raise RuntimeError(f"ledger holds {size} of {count} entries, {len(dead)} dead letters")


def main() -> None:
    options = parser(__doc__ or "", "--events", 20_000)
    options.add_argument("--batch-size", type=int, default=IngestOptions.batch_size)
    options.add_argument("--backlog-batch-size", type=int, default=IngestOptions.backlog_batch_size)
    arguments = options.parse_args()
    ingest = IngestOptions(
        batch_size=arguments.batch_size, backlog_batch_size=arguments.backlog_batch_size
    )
    asyncio.run(run(arguments.events, ingest))


if __name__ == "__main__":
    main()
