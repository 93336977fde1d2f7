"""Readiness and readings against the real PostgreSQL and Kafka of deploy/local."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from shared.adapters.infusion_view import InfusionView
from shared.adapters.outbox import Outbox
from shared.adapters.readings import KafkaOffsets, Readings
from shared.adapters.relay import Relay, RelayOptions
from shared.adapters.subject_views import Subscriptions, kafka_broker, subscribe
from shared.kernel.envelope import CloudEvent
from shared.kernel.logs import current_correlation_id
from shared.kernel.settings import ServiceSettings
from shared.web.observability import instrument
from tests.support import command, eventually, opened

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


async def test_ready_when_the_real_database_and_kafka_answer(settings: ServiceSettings) -> None:
    app = FastAPI()
    instrument(app, settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}


async def read(worker: Relay | Subscriptions, settings: ServiceSettings) -> Readings:
    async with KafkaOffsets(settings.kafka_bootstrap) as kafka:
        return await worker.readings(kafka)


async def test_relay_lag_counts_committed_events_until_the_broker_has_them(
    settings: ServiceSettings, application: EnrollmentApplication
) -> None:
    for subject in ("S-201", "S-202", "S-203"):
        application.register_subject(subject, "ZJU-1", command())
    outbox = Outbox.of(application, PUBLICATION, settings)
    relay = Relay(outbox, settings.kafka_bootstrap, RelayOptions(poll_interval=0.2))
    assert (await read(relay, settings)).relay_lag == {settings.topic: 3}
    stopping = asyncio.Event()
    running = asyncio.create_task(relay.run(stopping))
    try:

        async def caught_up() -> bool:
            return (await read(relay, settings)).relay_lag == {settings.topic: 0}

        await eventually(caught_up, timeout=30, what="relay lag 0")
    finally:
        stopping.set()
        await asyncio.wait_for(running, timeout=30)


def event_value(correlation_id: str) -> bytes:
    now = datetime.now(UTC)
    return CloudEvent(
        id=uuid.uuid4(),
        source="/trial-ledger/infusion",
        type="LeukapheresisPerformed.v1",  # not a fact the infusion view keeps: applied
        subject="S-301",
        time=now,
        recordedtime=now,
        sequence="1",
        correlationid=correlation_id,
        data={},
    ).to_kafka_value()


class Recording(InfusionView):
    """The infusion view, noting the correlation id each record was handled under."""

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__(settings.database)
        self.correlation_ids: list[str | None] = []

    async def apply(self, value: bytes | None, topic: str, partition: int, offset: int) -> bool:
        self.correlation_ids.append(current_correlation_id())
        return await super().apply(value, topic, partition, offset)


@pytest.fixture
async def view(settings: ServiceSettings) -> AsyncIterator[Recording]:
    async with opened(Recording(settings)) as view:
        yield view


async def test_a_view_subscription_reports_its_lag_dead_letters_and_outcomes(
    settings: ServiceSettings, view: Recording
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic, event_value("corr-v1"), key=b"S-301")
        await producer.send_and_wait(settings.topic, b"not a cloudevent", key=b"S-301")
    finally:
        await producer.stop()
    group = f"test-observed-view-{uuid.uuid4().hex[:8]}"
    broker = kafka_broker(settings.kafka_bootstrap)
    subscribe(broker, settings.topic, group, view)
    subscriptions = Subscriptions(broker)
    before = await read(subscriptions, settings)
    assert before.consumer_lag == {(group, settings.topic): 2}
    assert before.dead_letters == {group: 0}

    stopping = asyncio.Event()
    running = asyncio.create_task(subscriptions.run(stopping))
    try:

        async def consumed() -> bool:
            return (await read(subscriptions, settings)).consumer_lag[(group, settings.topic)] == 0

        await eventually(consumed, timeout=45, what="view lag 0")
        after = await read(subscriptions, settings)
        assert after.dead_letters == {group: 1}
        assert after.consumed == {(group, "applied"): 1, (group, "dead_letter"): 1}
        assert view.correlation_ids == ["corr-v1", None]  # the event's own, for its logs
    finally:
        stopping.set()
        await asyncio.wait_for(running, timeout=30)
