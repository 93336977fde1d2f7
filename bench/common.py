"""What every benchmark shares: a schema and a topic of its own, timing, and the report.

Each run works in a fresh schema ``bench_<random>`` of the projections database, dropped
at the end, and a fresh topic ``bench.<random>`` (topics are left on the broker). Rates
are reported against a baseline measured in the same process run, because the machine
is small and noisy: the ratio is the figure to compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from services.projections.ledger import LedgerStore
from shared.adapters.topics import TopicSpec, ensure_topics
from shared.kernel.settings import DatabaseSettings, ServiceSettings

T = TypeVar("T")
R = TypeVar("R")
PARTITIONS = 3
# the columns of ledger_entries an append writes (ingested_at takes its default)
LEDGER_COLUMNS = (
    "position", "event_id", "source", "event_type", "subject_id", "record_id",
    "record_version", "occurred_at", "recorded_at", "topic", "kafka_partition",
    "kafka_offset", "payload", "leaf_hash",
)  # fmt: skip


@dataclass(frozen=True)
class Measurement:
    name: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


@asynccontextmanager
async def bench_settings(
    topic: bool = False, service: str = "projections"
) -> AsyncIterator[ServiceSettings]:
    """``service``'s settings with a fresh schema (dropped afterwards) and topic (kept)."""
    suffix = uuid.uuid4().hex[:10]
    prefix = f"TL_{service.upper()}"
    env = {
        **os.environ,
        f"{prefix}_DATABASE_SCHEMA": f"bench_{suffix}",
        f"{prefix}_TOPIC": f"bench.{suffix}",
    }
    settings = ServiceSettings.from_env(service, env)
    await execute(settings.database, f'CREATE SCHEMA "{settings.database.schema}"')
    try:
        if topic:
            await ensure_topics(settings.kafka_bootstrap, TopicSpec(settings.topic, PARTITIONS))
        yield settings
    finally:
        await execute(settings.database, f'DROP SCHEMA "{settings.database.schema}" CASCADE')


async def on_fresh_ledger(
    fill: Callable[[LedgerStore, ServiceSettings], Awaitable[None]],
    measure: Callable[[LedgerStore], Awaitable[R]],
) -> R:
    """``measure`` a fresh ledger in a fresh schema (dropped afterwards) once ``fill`` has
    filled it, untimed, and its table is vacuumed."""
    async with bench_settings() as settings:
        progress(f"filling the ledger in schema {settings.database.schema}")
        ledger = LedgerStore(settings.database)
        await ledger.open()
        try:
            await fill(ledger, settings)
            await vacuum(settings.database, "ledger_entries")
            return await measure(ledger)
        finally:
            await ledger.close()


async def entry_batches(
    pool: asyncpg.Pool, columns: str, batch: int
) -> AsyncIterator[list[asyncpg.Record]]:
    """Every ledger entry's ``position`` and ``columns``, in position order, ``batch`` rows
    a query (the baselines read as the views and verify do)."""
    after = 0
    while rows := await pool.fetch(
        f"SELECT position, {columns} FROM ledger_entries WHERE position > $1 "  # noqa: S608
        "ORDER BY position LIMIT $2",
        after,
        batch,
    ):
        yield rows
        after = rows[-1]["position"]


async def execute(database: DatabaseSettings, sql: str) -> None:
    """Run ``sql`` as the database's owner (the schema's creator), in its schema."""
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute(f'SET search_path TO "{database.schema}"')
        await connection.execute(sql)
    finally:
        await connection.close()


async def vacuum(database: DatabaseSettings, table: str) -> None:
    """Set hint bits and statistics after a bulk load, so no timed read pays for them."""
    await execute(database, f"VACUUM (ANALYZE) {table}")


async def timed(name: str, count: int, work: Callable[[], Awaitable[T]]) -> Measurement:
    """Time one awaited call; ``count`` is how many items it handles."""
    start = time.perf_counter()
    await work()
    return Measurement(name, count, time.perf_counter() - start)


def timed_call(name: str, count: int, work: Callable[[], object]) -> Measurement:
    """Time one plain (CPU-bound) call."""
    start = time.perf_counter()
    work()
    return Measurement(name, count, time.perf_counter() - start)


def report(benchmark: str, baseline: Measurement, others: list[Measurement]) -> None:
    """One line per measurement; ratio is its rate over the baseline's rate."""
    print(f"{'benchmark':<9} {'measurement':<44} {'count':>9} {'seconds':>9} "
          f"{'rate/s':>11} {'ratio':>7}")  # fmt: skip
    for m in (baseline, *others):
        print(f"{benchmark:<9} {m.name:<44} {m.count:>9} {m.seconds:>9.3f} "
              f"{m.rate:>11.1f} {m.rate / baseline.rate:>7.3f}", flush=True)  # fmt: skip


def parser(description: str, option: str, default: int) -> argparse.ArgumentParser:
    """An argument parser with the benchmark's one size option (e.g. ``--events``)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(option, type=int, default=default, help=f"how many (default {default})")
    return result


def main(
    description: str, option: str, default: int, run: Callable[[int], Awaitable[None]]
) -> None:
    """Run a benchmark whose one size option (e.g. ``--entries``) is given to ``run``."""
    arguments = parser(description, option, default).parse_args()
    asyncio.run(run(getattr(arguments, option.removeprefix("--").replace("-", "_"))))


def progress(message: str) -> None:
    print(f"# {message}", flush=True)
