"""End to end: the enrollment service as a process, over real HTTP, into PostgreSQL and
out onto the real Kafka topic, read back with a plain aiokafka consumer."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.envelope import CloudEvent
from shared.settings import ServiceSettings
from tests.support import HEADERS, INVESTIGATOR, eventually, read_topic, screening_json

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def service(settings: ServiceSettings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """``python -m services.enrollment`` on a free port, with its own schema and topic."""
    port = free_port()
    env = {
        **os.environ,
        "TL_ENROLLMENT_DATABASE_SCHEMA": settings.database.schema,
        "TL_ENROLLMENT_TOPIC": settings.topic,
        "TL_ENROLLMENT_HTTP_PORT": str(port),
    }
    log = tmp_path / "enrollment.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "services.enrollment"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

        async def healthy() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        try:
            await eventually(healthy, timeout=60, what="enrollment service healthy")
            yield client
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, 30)


async def test_commands_travel_from_http_through_postgres_onto_kafka(
    settings: ServiceSettings, service: httpx.AsyncClient
) -> None:
    before = datetime.now(UTC)
    occurred = (before - timedelta(hours=2)).replace(microsecond=0)
    steps = [
        (
            "/subjects",
            {"subject_id": "S-201", "site_id": "ZJU-1", "occurred_at": occurred.isoformat()},
        ),
        (
            "/subjects/S-201/consent",
            {"form_version": "ICF v2.1", "signed_on": "2026-11-02", "obtained_by": "Dr Lin Wei"},
        ),
        ("/subjects/S-201/screening", screening_json()),
        ("/subjects/S-201/eligibility", {}),
        ("/subjects/S-201/enrolment", {"dose_level": 2}),
    ]
    for path, body in steps:
        response = await service.post(path, json=body, headers=HEADERS)
        assert response.status_code in (200, 201), response.text
    refused = await service.post(
        "/subjects/S-201/enrolment", json={"dose_level": 3}, headers=HEADERS
    )
    assert refused.json()["code"] == "already_enrolled"

    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=5)
    assert len(records) == 5  # the refused command published nothing
    events = [CloudEvent.from_kafka_value(r.value) for r in records]
    assert [e.type for e in events] == [
        "SubjectRegistered.v1",
        "ConsentSigned.v1",
        "ScreeningResultRecorded.v1",
        "EligibilityConfirmed.v1",
        "SubjectEnrolled.v1",
    ]
    assert {r.key for r in records} == {b"S-201"}
    assert {r.partition for r in records} == {records[0].partition}
    assert [dict(r.headers)["content-type"] for r in records] == [
        b"application/cloudevents+json; charset=utf-8"
    ] * 5

    registered = events[0]
    assert registered.source == "/trial-ledger/enrollment"
    assert registered.subject == "S-201"
    assert registered.time == occurred
    assert before <= registered.recordedtime <= datetime.now(UTC)
    assert registered.correlationid == "corr-http-1"
    assert registered.data["actor"] == {
        "user_id": INVESTIGATOR.user_id,
        "printed_name": INVESTIGATOR.printed_name,
        "role": INVESTIGATOR.role,
        "site": INVESTIGATOR.site,
    }
    assert registered.data["source"] == {"service": "enrollment", "client_id": "tests"}
    assert registered.data["site_id"] == "ZJU-1"
    assert [e.data["version"] for e in events] == [1, 2, 3, 4, 5]
    assert len({e.data["record_id"] for e in events}) == 1

    consented = events[1].data
    assert (consented["form_version"], consented["signed_on"], consented["obtained_by"]) == (
        "ICF v2.1",
        "2026-11-02",
        "Dr Lin Wei",
    )
    eligible = events[3].data
    assert eligible["rule_version"] == "NCT05030779-eligibility/1"
    assert all(c["met"] for c in eligible["criteria"])
    assert events[4].data["dose_level"] == 2

    stored = await _stored_event_count(settings)
    assert stored == 5


async def test_openapi_document_answers(service: httpx.AsyncClient) -> None:
    document = (await service.get("/openapi.json")).json()
    assert document["info"]["title"] == "Trial Ledger: enrollment"
    assert (await service.get("/docs")).status_code == 200


async def _stored_event_count(settings: ServiceSettings) -> int:
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        table = f'"{settings.database.schema}".enrollment_events'
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
    finally:
        await connection.close()
