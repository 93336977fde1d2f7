"""A command service's store as auditors read it (``GET /store/head``, ``/store/events``),
on the real PostgreSQL, through the enrollment service's HTTP API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from shared.adapters.outbox import Outbox
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Attribution, Provenance, Role
from shared.kernel.settings import ServiceSettings
from shared.study import DEFAULT_STUDY_ID
from shared.web.service_app import Serving
from tests.support import (
    INVESTIGATOR,
    NOW,
    VERIFIER,
    asgi_client,
    bearer,
    command,
    principal,
)

SECOND = "SYN-CART-2"

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


def auditor() -> dict[str, str]:
    """Headers with a fresh token (made at import, one would expire in a long run)."""
    return bearer(principal(Role.AUDITOR, user_id="u-aud-1"))


@pytest.fixture
async def client(
    application: EnrollmentApplication, settings: ServiceSettings
) -> AsyncIterator[httpx.AsyncClient]:
    outbox = Outbox.of(application, PUBLICATION, settings)
    serving = Serving(VERIFIER, outbox, lambda: NOW, studies=(DEFAULT_STUDY_ID, SECOND))
    app = create_app(application, serving)
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


def in_study(study_id: str) -> Attribution:
    """A command of ``study_id``'s (its caller's token was for it)."""
    return Attribution(
        Provenance(INVESTIGATOR, correlation_id="corr-1", client_id="tests", study_id=study_id),
        NOW,
    )


def study_auditor(study_id: str) -> dict[str, str]:
    return bearer(replace(principal(Role.AUDITOR, user_id="u-aud-2"), study_id=study_id))


async def test_under_a_study_the_store_answers_its_own_events_alone_at_the_stores_positions(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    application.register_subject("S-601", "ZJU-1", command())  # 1: the first study's (no id)
    application.register_subject("S-602", "ZJU-1", in_study(SECOND))  # 2
    application.register_subject("S-603", "ZJU-1", in_study(DEFAULT_STUDY_ID))  # 3
    application.register_subject("S-604", "ZJU-1", in_study(SECOND))  # 4
    second = f"/studies/{SECOND}/store"
    page = (await client.get(f"{second}/events", headers=study_auditor(SECOND))).json()
    assert [e["position"] for e in page["events"]] == [2, 4] and page["next_after"] is None
    assert {json.loads(e["payload"])["studyid"] for e in page["events"]} == {SECOND}
    assert page["events"][0]["key"] == f"{SECOND}/S-602"
    # a page of `limit` positions may hold fewer of the study's events, or none
    first = (
        await client.get(f"{second}/events", params={"limit": 1}, headers=study_auditor(SECOND))
    ).json()
    assert first == {"events": [], "next_after": 1}
    ids = (
        await client.get(
            f"{second}/events", params={"after": 3, "payload": "false"},
            headers=study_auditor(SECOND),
        )
    ).json()  # fmt: skip
    assert [(e["position"], e["payload"]) for e in ids["events"]] == [(4, None)]
    head = (await client.get(f"{second}/head", headers=study_auditor(SECOND))).json()
    newest = page["events"][-1]
    assert (head["position"], head["count"], head["unpublished"]) == (4, 2, 2)
    assert head["last_event_id"] == newest["event_id"]
    assert head["last_event_hash"] == hashlib.sha256(newest["payload"].encode()).hexdigest()
    assert head["oldest_unpublished"]["position"] == 2
    # the first study under its prefix: its own (the unnamed one included); unprefixed: all
    own = f"/studies/{DEFAULT_STUDY_ID}/store/events"
    mine = (await client.get(own, headers=auditor())).json()["events"]
    assert [e["position"] for e in mine] == [1, 3]
    every = (await client.get("/store/events", headers=auditor())).json()["events"]
    assert [e["position"] for e in every] == [1, 2, 3, 4]
    whole = (await client.get("/store/head", headers=auditor())).json()
    assert (whole["count"], whole["last_event_id"]) == (4, newest["event_id"])


async def test_a_study_store_refuses_another_studys_token_and_a_study_not_served(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    application.register_subject("S-611", "ZJU-1", in_study(SECOND))
    second = f"/studies/{SECOND}/store"
    for path in (f"{second}/head", f"{second}/events"):
        refused = await client.get(path, headers=auditor())  # the first study's token
        assert refused.status_code == 403 and refused.json()["code"] == "study_not_granted"
    for path in ("/store/head", "/store/events"):  # the first study's: not the second's auditor
        refused = await client.get(path, headers=study_auditor(SECOND))
        assert refused.status_code == 403 and refused.json()["code"] == "study_not_granted"
    missing = await client.get("/studies/NOT-SERVED-9/store/head", headers=study_auditor(SECOND))
    assert missing.status_code == 404 and missing.json()["code"] == "study_not_served"


async def relayed(outbox: Outbox, position: int, quarantined: Sequence[int] = ()) -> None:
    """The relay's state as if it were done up to ``position`` and held ``quarantined``."""
    connection = await asyncpg.connect(outbox.database.dsn)
    try:
        await outbox.create_tables(connection)
        held = [outbox.prepare(n) for p in quarantined if (n := outbox.notification(p))]
        await outbox.save(connection, position, [(o, "a test's", None) for o in held])
    finally:
        await connection.close()


async def study_heads(outbox: Outbox) -> dict[str, dict[str, Any]]:
    """Every study's head, without when it was read (the only part a second read changes)."""
    heads = {}
    for study in (DEFAULT_STUDY_ID, SECOND, "NOT-SERVED-9"):
        head = (await outbox.study_head(study)).to_json()
        heads[study] = {
            k: v for k, v in head.items() if k not in {"read_at", "oldest_unpublished_age_seconds"}
        }
    return heads


async def test_a_study_s_head_read_again_after_new_events_is_the_one_a_full_read_gives(
    application: EnrollmentApplication, settings: ServiceSettings
) -> None:
    outbox = Outbox.of(application, PUBLICATION, settings)
    application.register_subject("S-621", "ZJU-1", in_study(SECOND))  # 1
    application.register_subject("S-622", "ZJU-1", command())  # 2
    await study_heads(outbox)  # read once: later reads decode only what is new
    application.register_subject("S-623", "ZJU-1", in_study(SECOND))  # 3
    application.register_subject("S-624", "ZJU-1", in_study(DEFAULT_STUDY_ID))  # 4
    application.register_subject("S-625", "ZJU-1", in_study(SECOND))  # 5
    await relayed(outbox, 2, quarantined=[5])

    again = await study_heads(outbox)
    assert again == await study_heads(Outbox.of(application, PUBLICATION, settings))
    second = again[SECOND]
    assert (second["position"], second["count"], second["unpublished"]) == (5, 3, 2)
    assert second["oldest_unpublished"]["position"] == 3
    assert [q["position"] for q in second["quarantined"]] == [5]
    assert (again[DEFAULT_STUDY_ID]["count"], again[DEFAULT_STUDY_ID]["quarantined"]) == (2, [])
    assert again["NOT-SERVED-9"]["count"] == 0
    # nothing new: the same answer again
    assert await study_heads(outbox) == again


async def test_a_study_s_head_is_read_from_the_start_again_when_the_store_was_replaced(
    application: EnrollmentApplication, settings: ServiceSettings
) -> None:
    outbox = Outbox.of(application, PUBLICATION, settings)
    application.register_subject("S-631", "ZJU-1", in_study(SECOND))
    application.register_subject("S-632", "ZJU-1", in_study(SECOND))
    assert (await study_heads(outbox))[SECOND]["count"] == 2
    # a store put back from an older backup: the positions read before hold other events
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        await connection.execute(outbox.sql("DELETE FROM {events}"))
    finally:
        await connection.close()
    application.register_subject("S-633", "ZJU-1", command())
    application.register_subject("S-634", "ZJU-1", in_study(SECOND))

    again = await study_heads(outbox)
    assert again == await study_heads(Outbox.of(application, PUBLICATION, settings))
    assert (again[SECOND]["count"], again[DEFAULT_STUDY_ID]["count"]) == (1, 1)
