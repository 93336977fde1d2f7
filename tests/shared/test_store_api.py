"""A command service's store as auditors read it (``GET /store/head``, ``/store/events``),
on the real PostgreSQL, through the enrollment service's HTTP API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from shared.adapters.outbox import Outbox
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Role
from shared.kernel.settings import ServiceSettings
from shared.web.service_app import Serving
from tests.support import NOW, VERIFIER, asgi_client, bearer, command, principal

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


def auditor() -> dict[str, str]:
    """Headers with a fresh token (made at import, one would expire in a long run)."""
    return bearer(principal(Role.AUDITOR, user_id="u-aud-1"))


@pytest.fixture
async def client(
    application: EnrollmentApplication, settings: ServiceSettings
) -> AsyncIterator[httpx.AsyncClient]:
    outbox = Outbox.of(application, PUBLICATION, settings)
    app = create_app(application, Serving(VERIFIER, outbox, lambda: NOW))
    async with asgi_client(app, "enrollment") as client:
        yield client


async def test_the_head_names_the_newest_event_and_what_waits_to_be_published(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    for subject in ("S-501", "S-502", "S-503"):
        application.register_subject(subject, "ZJU-1", command())
    head = (await client.get("/store/head", headers=auditor())).json()
    events = (await client.get("/store/events", headers=auditor())).json()["events"]
    newest = events[-1]
    assert (head["position"], head["count"]) == (3, 3)
    assert head["last_event_id"] == newest["event_id"]
    assert head["last_event_hash"] == hashlib.sha256(newest["payload"].encode()).hexdigest()
    assert (head["published_position"], head["unpublished"]) == (0, 3)  # no relay ran
    assert head["oldest_unpublished"]["position"] == 1
    assert head["quarantined"] == []


async def test_events_are_the_exact_published_form_page_by_page(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    for subject in ("S-511", "S-512", "S-513"):
        application.register_subject(subject, "ZJU-1", command())
    first = (await client.get("/store/events", params={"limit": 2}, headers=auditor())).json()
    assert [e["position"] for e in first["events"]] == [1, 2] and first["next_after"] == 2
    rest = (await client.get("/store/events", params={"after": 2}, headers=auditor())).json()
    assert [e["position"] for e in rest["events"]] == [3] and rest["next_after"] is None
    event = CloudEvent.from_kafka_value(first["events"][0]["payload"].encode())
    assert (event.subject, event.type, first["events"][0]["key"]) == (
        "S-511", "SubjectRegistered.v1", "S-511",
    )  # fmt: skip
    ids = (await client.get("/store/events", params={"payload": "false"}, headers=auditor())).json()
    assert set(ids["events"][0]) == {
        "position",
        "event_id",
        "record_id",
        "record_version",
        "event_type",
        "key",
        "recorded_at",
        "payload",
        "problem",
    }
    assert ids["events"][0]["payload"] is None and ids["events"][0]["event_id"] == str(event.id)


async def test_only_auditors_and_monitors_read_the_store_and_a_refusal_is_recorded(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    assert (await client.get("/store/head")).status_code == 401
    monitor = bearer(principal(Role.MONITOR, user_id="u-mon-1"))
    assert (await client.get("/store/head", headers=monitor)).status_code == 200
    refused = await client.get("/store/events", headers=bearer())
    assert refused.status_code == 403 and refused.json()["code"] == "role_not_permitted"
    (denial,) = [e for _, e in application.stored_events()]
    assert (denial.denial.command, denial.denial.user_id) == ("store.read", "u-inv-1")
