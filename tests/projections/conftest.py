"""Fixtures: a ledger in a schema of its own in the projections database, a topic of its
own on the real broker, and published events made by the real enrollment code."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from services.enrollment.rules import Observation
from services.projections.__main__ import known_contracts
from services.projections.application import ProjectionsApplication
from services.projections.ingest import Ingester, IngestOptions
from services.projections.ledger import LedgerStore
from services.projections.views import ViewStore
from shared.adapters.readings import KafkaOffsets, lag_by_topic
from shared.adapters.topics import TopicSpec, ensure_topics
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Meaning
from shared.kernel.settings import ServiceSettings
from tests.faults.infra import as_superuser as superuser_sql
from tests.support import (
    RECORD_KEY,
    SIGNER,
    as_published,
    command,
    consent,
    eligible_observations,
    screening,
    signing,
)

CHECKPOINT_KEY = Ed25519PrivateKey.generate()


def published_events(subjects: int = 3) -> list[CloudEvent]:
    """A small trial's events as the enrollment relay would publish them."""
    app = EnrollmentApplication(signer=SIGNER, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for n in range(1, subjects + 1):
        subject = f"S-{n:03d}"
        app.register_subject(subject, "ZJU-1", command())
        app.sign_consent(subject, consent(), command(), signing(Meaning.RESPONSIBILITY))
        app.record_screening(subject, screening(), command())
        steroid = eligible_observations()["systemic_steroids"]
        dated = Observation(date(2026, 10, 1), steroid.observed_on)
        app.correct_value(
            subject, "screening.systemic_steroids", dated, "found in notes", command()
        )
        app.correct_value(
            subject, "screening.systemic_steroids", steroid, "wrong patient", command()
        )
        app.decide_eligibility(subject, command(), signing(Meaning.APPROVAL))
        app.enrol(subject, 1, command())
    return as_published(app, PUBLICATION)


@pytest.fixture
async def projections_settings(
    enrollment_settings_env: dict[str, str],
) -> AsyncIterator[ServiceSettings]:
    suffix = uuid.uuid4().hex[:10]
    env = {
        **enrollment_settings_env,
        "TL_PROJECTIONS_DATABASE_SCHEMA": f"test_{suffix}",
        "TL_PROJECTIONS_TOPIC": f"test.source.{suffix}",
    }
    settings = ServiceSettings.from_env("projections", env)
    connection = await asyncpg.connect(settings.database.dsn)
    await connection.execute(f'CREATE SCHEMA "{settings.database.schema}"')
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(settings.topic, partitions=3))
    try:
        yield settings
    finally:
        await connection.execute(f'DROP SCHEMA "{settings.database.schema}" CASCADE')
        await connection.close()


@pytest.fixture
async def ledger(projections_settings: ServiceSettings) -> AsyncIterator[LedgerStore]:
    store = LedgerStore(projections_settings.database)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def projections(ledger: LedgerStore) -> ProjectionsApplication:
    return ProjectionsApplication(
        ledger, [CHECKPOINT_KEY.public_key()], record_keys=[RECORD_KEY.public_key()]
    )


async def as_superuser(settings: ServiceSettings, sql: str) -> None:
    """``sql`` as the PostgreSQL superuser in the ledger's schema, the append-only triggers
    switched off, as a hostile superuser would."""
    await superuser_sql(settings.database.dbname, sql, settings.database.schema)


def make_ingester(settings: ServiceSettings, ledger: LedgerStore, **options: int) -> Ingester:
    return Ingester(
        ledger,
        settings.kafka_bootstrap,
        [settings.topic],
        known_contracts(),
        CHECKPOINT_KEY,
        IngestOptions(**{"checkpoint_every": 10_000, "poll_ms": 200, **options}),
        on_appended=ViewStore(ledger.pool, ledger.schema).catch_up,
    )


async def produce(settings: ServiceSettings, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(settings.topic, value=value, key=key)
    finally:
        await producer.stop()


def records_of(events: list[CloudEvent]) -> list[tuple[bytes, bytes]]:
    return [(e.kafka_key(), e.to_kafka_value()) for e in events]


async def ingest_until(
    settings: ServiceSettings,
    ledger: LedgerStore,
    size: int,
    read_all: bool = False,
    **options: int,
) -> Ingester:
    """Run an ingester until the ledger holds ``size`` entries (``read_all``: and the
    offsets kept with the ledger reach the topic's end, every record read, duplicates
    included); stop it; sign a checkpoint."""
    ingester = make_ingester(settings, ledger, **options)
    stopping = asyncio.Event()
    task = asyncio.create_task(ingester.run(stopping))
    try:
        async with asyncio.timeout(60):
            while await ledger.size() < size or (read_all and await unread(settings, ledger)):
                assert not task.done(), task.exception()
                await asyncio.sleep(0.1)
    finally:
        stopping.set()
        await task
    await ingester.checkpoint()
    return ingester


async def ingest_all(
    settings: ServiceSettings, ledger: LedgerStore, events: list[CloudEvent], **options: int
) -> Ingester:
    """``events`` produced to the ledger's topic and ingested, until the ledger holds as
    many entries as there are events (``ingest_until``: a checkpoint signed)."""
    await produce(settings, records_of(events))
    return await ingest_until(settings, ledger, len(events), False, **options)


async def unread(settings: ServiceSettings, ledger: LedgerStore) -> int:
    """Records on the topic past the offsets kept with the ledger."""
    async with KafkaOffsets(settings.kafka_bootstrap) as kafka:
        ends = await kafka.end_offsets([settings.topic])
    kept = {TopicPartition(t, p): o for (t, p), o in (await ledger.offsets()).items()}
    return sum(lag_by_topic(ends, kept).values())


@pytest.fixture
async def filled(projections_settings: ServiceSettings, ledger: LedgerStore) -> int:
    """A ledger holding two subjects' events and a checkpoint; returns the entry count."""
    events = published_events(subjects=2)
    await ingest_all(projections_settings, ledger, events)
    return len(events)
