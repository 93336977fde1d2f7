"""Fixtures: a ledger in a schema of its own in the projections database, a topic of its
own on the real broker, and published events made by the real enrollment code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date

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
from shared.clinical import STUDY  # the first study's calendar: these ledgers are its
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Meaning
from shared.kernel.settings import ServiceSettings
from tests.faults.infra import as_superuser as superuser_sql
from tests.support import (
    MEMORY,
    RECORD_KEY,
    SIGNER,
    as_published,
    command,
    consent,
    eligible_observations,
    isolated,
    opened,
    screening,
    signing,
)

CHECKPOINT_KEY = Ed25519PrivateKey.generate()


def published_events(subjects: int = 3, prefix: str = "S") -> list[CloudEvent]:
    """A small trial's events as the enrollment relay would publish them (subjects
    ``<prefix>-001`` ...)."""
    app = EnrollmentApplication(signer=SIGNER, env=MEMORY)
    for n in range(1, subjects + 1):
        subject = f"{prefix}-{n:03d}"
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
    async with isolated("projections", enrollment_settings_env) as settings:
        yield settings


@pytest.fixture
async def ledger(projections_settings: ServiceSettings) -> AsyncIterator[LedgerStore]:
    async with opened(LedgerStore(projections_settings.database)) as store:
        yield store


@pytest.fixture
def projections(ledger: LedgerStore) -> ProjectionsApplication:
    return ProjectionsApplication(
        ledger, [CHECKPOINT_KEY.public_key()], record_keys=[RECORD_KEY.public_key()]
    )


def records_of(events: Sequence[CloudEvent]) -> list[tuple[bytes, bytes]]:
    return [(e.kafka_key(), e.to_kafka_value()) for e in events]


@dataclass(frozen=True)
class Feed:
    """The ledger's own topic on the real broker and the ledger it feeds: what a test
    publishes there, ingests into the ledger, and does to the ledger as a superuser."""

    settings: ServiceSettings
    ledger: LedgerStore

    async def produce(self, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """``records`` (key, value) sent to the topic as they are, readable or not (a key
        of None: a record without key)."""
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(self.settings.topic, value=value, key=key)
        finally:
            await producer.stop()

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        await self.produce(records_of(events))

    def ingester(self, **options: int) -> Ingester:
        return Ingester(
            self.ledger,
            self.settings.kafka_bootstrap,
            [self.settings.topic],
            known_contracts(),
            CHECKPOINT_KEY,
            IngestOptions(**{"checkpoint_every": 10_000, "poll_ms": 200, **options}),
            on_appended=ViewStore(self.ledger.pool, self.ledger.schema, STUDY).catch_up,
        )

    async def ingest_until(self, size: int, read_all: bool = False, **options: int) -> Ingester:
        """Run an ingester until the ledger holds ``size`` entries (``read_all``: and the
        offsets kept with the ledger reach the topic's end, every record read, duplicates
        included); stop it; sign a checkpoint."""
        ingester = self.ingester(**options)
        stopping = asyncio.Event()
        task = asyncio.create_task(ingester.run(stopping))
        try:
            async with asyncio.timeout(60):
                while await self.ledger.size() < size or (read_all and await self.unread()):
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.1)
        finally:
            stopping.set()
            await task
        await ingester.checkpoint()
        return ingester

    async def ingest_all(self, events: Sequence[CloudEvent], **options: int) -> Ingester:
        """``events`` published and ingested, until the ledger holds as many entries as
        there are events (``ingest_until``: a checkpoint signed)."""
        await self.publish(events)
        return await self.ingest_until(len(events), False, **options)

    async def unread(self) -> int:
        """Records on the topic past the offsets kept with the ledger."""
        async with KafkaOffsets(self.settings.kafka_bootstrap) as kafka:
            ends = await kafka.end_offsets([self.settings.topic])
        kept = {TopicPartition(t, p): o for (t, p), o in (await self.ledger.offsets()).items()}
        return sum(lag_by_topic(ends, kept).values())

    async def as_superuser(self, sql: str) -> None:
        """``sql`` as the PostgreSQL superuser in the ledger's schema, the append-only
        triggers switched off, as a hostile superuser would."""
        database = self.settings.database
        await superuser_sql(database.dbname, sql, database.schema)


@pytest.fixture
def feed(projections_settings: ServiceSettings, ledger: LedgerStore) -> Feed:
    return Feed(projections_settings, ledger)


@pytest.fixture
async def filled(feed: Feed) -> int:
    """A ledger holding two subjects' events and a checkpoint; returns the entry count."""
    events = published_events(subjects=2)
    await feed.ingest_all(events)
    return len(events)
