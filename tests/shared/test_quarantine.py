"""One record cannot stop a relay, against the real PostgreSQL and Kafka broker.

A record whose mapping fails, or that is larger than the topic takes, is quarantined
with its reason; every later record of its key waits behind it, so that the key's order
on the topic stays the store's; the other keys go on. Readiness and the store's head
say so. After the fix, the held records are published in store order.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.enrollment.application import EnrollmentApplication
from services.enrollment.domain import Subject
from services.enrollment.publication import PUBLICATION
from shared.adapters.outbox import Head, Outbox
from shared.adapters.readings import KafkaOffsets
from shared.adapters.relay import Relay, RelayOptions, stall_reason
from shared.adapters.topics import FOREVER
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Meaning
from shared.kernel.publication import Publication
from shared.kernel.settings import ServiceSettings
from tests.support import Running, command, consent, eventually, read_topic, screening, signing

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]
OPTIONS = RelayOptions(batch_size=50, poll_interval=0.2, max_backoff=1.0, quarantine_retry=3600)


def broken_consent() -> Publication:
    """The enrollment publication with a defect: consents cannot be mapped."""

    def fails(event: Any) -> dict[str, Any]:
        raise KeyError("form_version")

    contract, _ = PUBLICATION.events[Subject.ConsentSigned]
    events = {**PUBLICATION.events, Subject.ConsentSigned: (contract, fails)}
    return Publication("enrollment", PUBLICATION.records, events, PUBLICATION.occurred_at)


@pytest.fixture
async def relays() -> AsyncIterator[list[Running]]:
    running: list[Running] = []
    yield running
    for r in running:
        if not r.task.done():
            await r.stop()


def start(relays: list[Running], outbox: Outbox, settings: ServiceSettings) -> Running:
    relays.append(Running(Relay(outbox, settings.kafka_bootstrap, OPTIONS)))
    return relays[-1]


async def head_where(outbox: Outbox, holds: str, check: Any) -> Head:
    found: list[Head] = []

    async def holds_now() -> bool:
        found[:] = [await outbox.head()]
        return bool(check(found[0]))

    await eventually(holds_now, timeout=30, what=holds)
    return found[0]


def versions_by_subject(records: list[Any]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for record in records:
        event = CloudEvent.from_kafka_value(record.value)
        versions = seen.setdefault(str(event.subject), [])
        if event.data["version"] not in versions:
            versions.append(event.data["version"])
    return seen


async def test_a_failing_mapping_holds_its_key_while_other_subjects_are_published(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    application.register_subject("S-401", "ZJU-1", command())
    application.register_subject("S-402", "ZJU-1", command())
    application.sign_consent("S-401", consent(), command(), signing(Meaning.RESPONSIBILITY))
    application.record_screening("S-401", screening(), command())
    application.register_subject("S-403", "ZJU-1", command())
    broken = Outbox.of(application, broken_consent(), settings)
    running = start(relays, broken, settings)

    head = await head_where(broken, "everything passed", lambda h: h.published_position == 6)
    assert [(q.position, q.held_behind) for q in head.quarantined] == [(3, None), (4, 3), (5, 3)]
    assert "KeyError" in head.quarantined[0].reason
    assert head.quarantined[0].event_type == "Subject.ConsentSigned"
    assert {q.key for q in head.quarantined} == {"S-401"}
    reason = stall_reason(head, stall_after=30)
    assert reason is not None and "quarantined: 3 event(s)" in reason and "position 3" in reason
    assert (await running.worker.problems())["relay"] == reason
    async with KafkaOffsets(settings.kafka_bootstrap) as kafka:
        readings = await running.worker.readings(kafka)
    assert readings.relay_quarantined == {settings.topic: 3}
    records = await read_topic(settings.kafka_bootstrap, settings.topic, 3, distinct=True)
    assert versions_by_subject(records) == {"S-401": [1], "S-402": [1], "S-403": [1]}

    await running.stop()  # the fix is deployed: the relay starts again with it
    fixed = Outbox.of(application, PUBLICATION, settings)
    start(relays, fixed, settings)
    await head_where(fixed, "quarantine released", lambda h: not h.quarantined)
    records = await read_topic(settings.kafka_bootstrap, settings.topic, 6, distinct=True)
    assert versions_by_subject(records)["S-401"] == [1, 2, 3, 4]  # the store's order
    assert stall_reason(await fixed.head(), stall_after=30) is None


async def test_an_event_larger_than_the_topic_takes_is_held_until_the_limit_is_raised(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    await set_topic_limit(settings, 2000)  # a signature (1.2 kB) fits; a screening does not
    application.register_subject("S-411", "ZJU-1", command())
    application.sign_consent("S-411", consent(), command(), signing(Meaning.RESPONSIBILITY))
    application.record_screening("S-411", screening(), command())
    application.register_subject("S-412", "ZJU-1", command())
    outbox = Outbox.of(application, PUBLICATION, settings)
    start(relays, outbox, settings)

    head = await head_where(outbox, "the screening held", lambda h: h.published_position == 5)
    assert [q.position for q in head.quarantined] == [4]
    assert "max.message.bytes" in head.quarantined[0].reason
    assert head.quarantined[0].key == "S-411"

    await set_topic_limit(settings, 1_048_588)
    retried = await operator(settings, "retry")  # the command docs/operations.md gives
    assert retried.returncode == 0, retried.stderr
    await head_where(outbox, "released after the retry", lambda h: not h.quarantined)
    records = await read_topic(settings.kafka_bootstrap, settings.topic, 5, distinct=True)
    assert versions_by_subject(records) == {"S-411": [1, 2, 3, 4], "S-412": [1]}


async def test_the_operator_lists_the_quarantine(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    application.register_subject("S-421", "ZJU-1", command())
    application.sign_consent("S-421", consent(), command(), signing(Meaning.RESPONSIBILITY))
    broken = Outbox.of(application, broken_consent(), settings)
    start(relays, broken, settings)
    await head_where(broken, "quarantined", lambda h: len(h.quarantined) == 2)
    listed = await operator(settings, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and '"position": 2' in lines[0] and "KeyError" in lines[0]


async def operator(settings: ServiceSettings, action: str) -> subprocess.CompletedProcess[str]:
    """``python -m shared.adapters.quarantine <action> --service enrollment``, with its settings."""
    env = {
        **os.environ,
        "TL_ENROLLMENT_DATABASE_SCHEMA": settings.database.schema,
        "TL_ENROLLMENT_TOPIC": settings.topic,
    }
    command = [
        sys.executable,
        "-m",
        "shared.adapters.quarantine",
        action,
        "--service",
        "enrollment",
    ]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False
    )


async def set_topic_limit(settings: ServiceSettings, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        configs = {**FOREVER, "max.message.bytes": str(limit)}
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic, configs=configs)]
        )
    finally:
        await admin.close()
