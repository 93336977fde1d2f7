"""End to end: a command accepted by a service until the ledger's subject view shows it.

    python -m bench.e2e [--clients 20] [--commands 400]

The real stack runs as processes (every service, each relay, the ledger's ingester with
its views), as the end-to-end tests start it (``tests/e2e/stack.py``), on the broker and
database of deploy/local. ``--clients`` investigators, each with an account of their own
and logged in once, register subjects through the enrollment service's HTTP API, as
fast as answers come, ``--commands`` in all. For each registration the benchmark takes
the time from its 201 to the moment the subject's row appears in the projections
service's ``subject_states`` (the view ``GET /subjects/{id}`` reads). One reader looks
for the awaited subjects every ``WATCH`` seconds, so a figure is late by at most that.

Where the time went, per registration, from the clocks of processes on this one machine:
``recorded -> published`` (the event's recorded time in the enrollment service to its
Kafka record's timestamp, set when the relay sends it), ``published -> appended`` (to
the start of the ledger's append transaction: Kafka, the ingester's fetch and batch),
``appended -> in the view`` (the append's commit and the views' catch-up, to when the
reader saw it). The slowest registrations are listed with their stages.

Baseline, in the same run: a Kafka round trip at the same concurrency, one record
produced (acks=all) and consumed by a plain consumer, the part of the path that no
implementation avoids (a relay and an ingester add a database write each). The report
gives p50 and p99 of both, and each percentile as a multiple of the baseline's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import parser, progress
from shared.adapters.topics import TopicSpec, ensure_topics
from shared.kernel.settings import ServiceSettings
from shared.web.runner import settle_heap
from tests.e2e.stack import Stack, running_stack

WATCH = 0.005  # seconds between looks at the view
PARTITIONS = 3  # of the baseline's topic
PASSWORD = secrets.token_urlsafe(18)  # the bench accounts' own, never reused


async def seen_in_view(
    stack: Stack, subjects: dict[str, float], seen: dict[str, float], sent: asyncio.Event
) -> None:
    """Record when each awaited subject's state appears in the projections' view, until
    every command is ``sent`` and each of their subjects seen."""
    database = stack.projections_settings.database
    connection = await asyncpg.connect(database.dsn, server_settings={
        "search_path": f'"{database.schema}"'})  # fmt: skip
    try:
        while not (sent.is_set() and len(seen) == len(subjects)):
            waiting = [s for s in subjects if s not in seen]
            if waiting:
                rows = await connection.fetch(
                    "SELECT subject_id FROM subject_states WHERE subject_id = ANY($1::text[])",
                    waiting,
                )
                now = time.time()  # the other processes' clocks are wall clocks too
                seen.update((r["subject_id"], now) for r in rows)
            await asyncio.sleep(WATCH)
    finally:
        await connection.close()


async def registrations(
    stack: Stack, clients: int, commands: int
) -> tuple[dict[str, float], dict[str, float]]:
    """When each registration's 201 came and when its subject's state was in the view
    (wall clock seconds), by subject."""
    sessions = [
        await stack.member(f"inv.bench{n}", PASSWORD, "investigator") for n in range(clients)
    ]
    settle_heap()  # as every service does once started: no full collection walks the setup
    accepted: dict[str, float] = {}
    seen: dict[str, float] = {}
    sent = asyncio.Event()
    watcher = asyncio.create_task(seen_in_view(stack, accepted, seen, sent))
    run = uuid.uuid4().hex[:6].upper()

    async def client(n: int, session: dict[str, str]) -> None:
        for k in range(n, commands, clients):
            subject = f"E-{run}-{k:05d}"
            response = await stack.enrollment.post(
                "/subjects", json={"subject_id": subject, "site_id": "ZJU-1"}, headers=session
            )
            if response.status_code != 201:
                raise RuntimeError(f"registration {subject}: {response.text}")
            accepted[subject] = time.time()

    await asyncio.gather(*(client(n, s) for n, s in enumerate(sessions)))
    sent.set()
    try:
        await asyncio.wait_for(watcher, 60)
    except TimeoutError:
        missing = len(set(accepted) - set(seen))
        raise RuntimeError(f"{missing} registrations not in the view after 60 s") from None
    return accepted, seen


STAGES = ("recorded -> published", "published -> appended", "appended -> in the view")
Stages = tuple[float, float, float]  # seconds in each of STAGES


async def stages(stack: Stack, seen: dict[str, float]) -> dict[str, Stages]:
    """Each registration's seconds in ``STAGES``, from the ledger's entries of the
    subjects and the timestamps of their Kafka records."""
    database = stack.projections_settings.database
    connection = await asyncpg.connect(database.dsn, server_settings={
        "search_path": f'"{database.schema}"'})  # fmt: skip
    try:
        rows = await connection.fetch(
            "SELECT subject_id, recorded_at, ingested_at, kafka_partition, kafka_offset "
            "FROM ledger_entries WHERE subject_id = ANY($1::text[])",
            list(seen),
        )
    finally:
        await connection.close()
    settings = stack.enrollment_settings
    offsets = {(r["kafka_partition"], r["kafka_offset"]) for r in rows}
    published = await record_times(settings.kafka_bootstrap, settings.topic, offsets)
    return {
        r["subject_id"]: (
            published[(r["kafka_partition"], r["kafka_offset"])] - r["recorded_at"].timestamp(),
            r["ingested_at"].timestamp() - published[(r["kafka_partition"], r["kafka_offset"])],
            seen[r["subject_id"]] - r["ingested_at"].timestamp(),
        )
        for r in rows
    }


async def record_times(
    bootstrap: str, topic: str, offsets: set[tuple[int, int]]
) -> dict[tuple[int, int], float]:
    """The timestamps (seconds) of the records at ``offsets`` (partition, offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = {p for p, _ in offsets}
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        for p in partitions:
            consumer.seek(TopicPartition(topic, p), min(o for q, o in offsets if q == p))
        found: dict[tuple[int, int], float] = {}
        while len(found) < len(offsets):
            batches = await consumer.getmany(timeout_ms=10_000)
            if not batches:
                raise RuntimeError(f"{len(offsets) - len(found)} records not read back")
            for partition, records in batches.items():
                for record in records:
                    if (partition.partition, record.offset) in offsets:
                        found[(partition.partition, record.offset)] = record.timestamp / 1000
        return found
    finally:
        await consumer.stop()


def slowest(accepted: dict[str, float], seen: dict[str, float], split: dict[str, Stages]) -> None:
    """The slowest 2% of registrations, in the order they were accepted, with their stages:
    a burst shows as neighbours, and its stage as the one that grew."""
    order = sorted(accepted, key=accepted.__getitem__)
    took = {s: seen[s] - accepted[s] for s in order}
    slow = set(sorted(order, key=took.__getitem__, reverse=True)[: max(1, len(order) // 50)])
    for index, subject in enumerate(order):
        if subject in slow:
            parts = zip(STAGES, split[subject], strict=True)
            stages_ms = ", ".join(f"{name} {value * 1000:.0f}" for name, value in parts)
            progress(f"slow: #{index} {took[subject] * 1000:.0f} ms: {stages_ms}")


async def kafka_round_trips(settings: ServiceSettings, clients: int, count: int) -> list[float]:
    """Seconds from each record's send until a plain consumer has it."""
    topic = f"bench.{uuid.uuid4().hex[:10]}"
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(topic, PARTITIONS))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", fetch_max_wait_ms=5)  # fmt: skip
    await producer.start()
    await consumer.start()
    await _positioned(consumer, topic)
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    try:

        async def client(n: int) -> None:
            for k in range(n, count, clients):
                key = f"{k:06d}".encode()
                sent[key] = time.perf_counter()
                await producer.send_and_wait(topic, b"{}", key=key)

        async def read() -> None:
            async for record in consumer:
                latencies.append(time.perf_counter() - sent[record.key or b""])
                if len(latencies) == count:
                    return

        reading = asyncio.create_task(read())
        await asyncio.gather(*(client(n) for n in range(clients)))
        await asyncio.wait_for(reading, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


async def _positioned(consumer: AIOKafkaConsumer, topic: str) -> None:
    """The topic's partitions assigned and a position taken in each before the first
    send: a record sent before would wait for the consumer's start, not for Kafka (runs
    with a baseline p50 of 86-98 ms, 2026-12-04)."""
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    for partition in partitions:
        await consumer.position(partition)


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def report(rows: list[tuple[str, list[float]]], benchmark: str = "e2e") -> None:
    """p50 and p99 in milliseconds; ``x base``: each as a multiple of the baseline's."""
    base = rows[0][1]
    print(f"{'benchmark':<9} {'measurement':<44} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'p50 x base':>10} {'p99 x base':>10}")  # fmt: skip
    for name, values in rows:
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{benchmark:<9} {name:<44} {len(values):>6} {p50 * 1000:>8.1f} {p99 * 1000:>8.1f} "
              f"{p50 / percentile(base, 50):>10.2f} {p99 / percentile(base, 99):>10.2f}",
              flush=True)  # fmt: skip


async def run(clients: int, commands: int) -> None:
    settings = ServiceSettings.from_env("enrollment")
    with tempfile.TemporaryDirectory() as folder:
        progress("starting the stack (every service as a process)")
        async with running_stack({**os.environ}, Path(folder)) as stack:
            progress(f"{clients} clients: {commands} Kafka round trips, then registrations")
            settle_heap()
            base = await kafka_round_trips(settings, clients, commands)
            accepted, seen = await registrations(stack, clients, commands)
            split = await stages(stack, seen)
    slowest(accepted, seen, split)
    in_stages = [
        (f"  stage: {name}", [split[s][n] for s in split]) for n, name in enumerate(STAGES)
    ]
    report([("baseline: Kafka produce -> consume", base),
            ("registration 201 -> subject view", [seen[s] - accepted[s] for s in accepted]),
            *in_stages])  # fmt: skip


if __name__ == "__main__":
    arguments = parser(__doc__ or "", "--commands", 400)
    arguments.add_argument("--clients", type=int, default=20, help="how many (default 20)")
    given = arguments.parse_args()
    asyncio.run(run(given.clients, given.commands))
