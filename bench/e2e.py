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
                now = time.perf_counter()
                seen.update((r["subject_id"], now) for r in rows)
            await asyncio.sleep(WATCH)
    finally:
        await connection.close()


async def registrations(stack: Stack, clients: int, commands: int) -> list[float]:
    """Seconds from each registration's 201 to its subject's state in the view."""
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
            accepted[subject] = time.perf_counter()

    await asyncio.gather(*(client(n, s) for n, s in enumerate(sessions)))
    sent.set()
    try:
        await asyncio.wait_for(watcher, 60)
    except TimeoutError:
        missing = len(set(accepted) - set(seen))
        raise RuntimeError(f"{missing} registrations not in the view after 60 s") from None
    return [seen[s] - accepted[s] for s in accepted]


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
            measured = await registrations(stack, clients, commands)
    report([("baseline: Kafka produce -> consume", base),
            ("registration 201 -> subject view", measured)])  # fmt: skip


if __name__ == "__main__":
    arguments = parser(__doc__ or "", "--commands", 400)
    arguments.add_argument("--clients", type=int, default=20, help="how many (default 20)")
    given = arguments.parse_args()
    asyncio.run(run(given.clients, given.commands))
