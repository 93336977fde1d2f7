"""End to end: a subject enrolled in the enrollment service reaches the infusion
service's view through real Kafka; the whole treatment runs over HTTP; the events reach
the infusion topic and the projections' subject state; refusals leave the store alone;
the view survives a restart of the service without reprocessing anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from shared.kernel.envelope import CloudEvent
from shared.kernel.signatures import verify_published
from tests.e2e.flows import PASSWORD, enrol, once_seen, stored_events, today
from tests.e2e.stack import Stack
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration


async def leukapheresis(stack: Stack, session: dict[str, str], subject: str) -> httpx.Response:
    body = {"performed_on": today(-10), "volume_ml": "180"}
    return await stack.infusion.post(
        f"/subjects/{subject}/leukapheresis", json=body, headers=session
    )


async def test_a_subject_goes_from_enrollment_to_infusion(stack: Stack) -> None:
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    pharmacist = await stack.member("zhao.pharm", PASSWORD, "cell_therapy_pharmacist")
    await stack.create_user("aud.kim", PASSWORD, "auditor")

    never = await leukapheresis(stack, session, "S-404")
    assert never.status_code == 409
    assert never.json()["code"] == "not_enrolled"
    assert never.json()["details"] == {
        "subject_id": "S-404",
        "status": "unknown",
        "retryable": True,
    }

    await enrol(stack, session, "S-401", level=1)

    await once_seen(
        lambda: leukapheresis(stack, session, "S-401"), 201, "the infusion view sees S-401 enrolled"
    )

    release = {"lot_id": "LOT-401", "product": "CD19/BCMA", "car_positive_percent": "41.5",
               "viability_percent": "92", "sterility_passed": True, "release_tests_passed": True,
               "released_on": today(-6)}  # fmt: skip
    released = await stack.infusion.post(
        "/subjects/S-401/products", json=release, headers=pharmacist
    )
    assert released.status_code == 200, released.text
    regimen = {"agents": [{"agent": "fludarabine", "dose_mg_per_m2": "25", "days": 3},
                          {"agent": "cyclophosphamide", "dose_mg_per_m2": "250", "days": 3}],
               "started_on": today(-5), "completed_on": today(-3)}  # fmt: skip
    depleted = await stack.infusion.post(
        "/subjects/S-401/lymphodepletion", json=regimen, headers=session
    )
    assert depleted.status_code == 200, depleted.text
    started = datetime.now(UTC) - timedelta(hours=1)
    signature = await stack.signature(
        session, "responsibility", "infusion/infusion/S-401", PASSWORD
    )
    infusion = {
        "weight_kg": "64",
        "lots": [{"lot_id": "LOT-401", "viable_car_positive_cells": "64000000"}],
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=15)).isoformat(),
        "signature": signature,
    }
    infused = await stack.infusion.post("/subjects/S-401/infusion", json=infusion, headers=session)
    assert infused.status_code == 200, infused.text
    assert infused.json()["signatures"][0]["printed_name"] == "Lin Wei"

    count = await stored_events(stack.infusion_settings, "infusion_events")
    again = await stack.infusion.post("/subjects/S-401/infusion", json=infusion, headers=session)
    assert (again.status_code, again.json()["code"]) == (409, "already_done")
    assert await stored_events(stack.infusion_settings, "infusion_events") == count

    settings = stack.infusion_settings
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=5)
    types = [CloudEvent.from_kafka_value(r.value).type for r in records]
    assert types == [
        "LeukapheresisPerformed.v1",
        "ProductReleased.v1",
        "LymphodepletionAdministered.v1",
        "CarTInfused.v1",
        "RecordSigned.v2",
    ]
    infused, signed = (json.loads(r.value) for r in records[3:5])
    assert verify_published(infused, signed, stack.record_public_key())
    infused_event = CloudEvent.from_kafka_value(records[3].value).data
    assert (infused_event["dose_level"], infused_event["cells_per_kg_millions"]) == (1, "1.000")

    auditor = await stack.log_in("aud.kim", PASSWORD)

    async def projected() -> bool:
        state = (await stack.projections.get("/subjects/S-401", headers=auditor)).json()
        return "infusion" in state

    await eventually(projected, what="the infusion in the projections' subject state")
    state = (await stack.projections.get("/subjects/S-401", headers=auditor)).json()
    assert state["infusion"]["dose_level"] == 1
    assert state["infusion"]["lots"] == ["LOT-401"]
    assert datetime.fromisoformat(state["infusion"]["infused_at"]) == started


async def test_refusals_leave_the_store_untouched_and_say_why(stack: Stack) -> None:
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    await enrol(stack, session, "S-402", level=None)  # eligible, then withdrawn: never treatable
    withdrawal = {"reason": "moved abroad"}
    await stack.enrollment.post("/subjects/S-402/withdrawal", json=withdrawal, headers=session)

    async def view_sees_withdrawal() -> bool:
        response = await leukapheresis(stack, session, "S-402")
        assert response.status_code == 409, response.text
        return bool(response.json()["code"] == "subject_withdrawn")

    await eventually(view_sees_withdrawal, what="the infusion view sees S-402 withdrawn")
    assert await stored_events(stack.infusion_settings, "infusion_events") == 0


async def test_the_view_survives_a_restart_without_reprocessing(stack: Stack) -> None:
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    await enrol(stack, session, "S-403", level=1)

    async def seen() -> bool:
        return bool((await leukapheresis(stack, session, "S-403")).status_code == 201)

    await eventually(seen, what="the infusion view sees S-403 enrolled")
    settings = stack.infusion_settings
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        query = f'SELECT * FROM "{settings.database.schema}".enrollment_view ORDER BY subject_id'
        before = await connection.fetch(query)
        await stack.processes["infusion"].restart()
        treatment = await stack.infusion.get("/subjects/S-403", headers=session)
        assert treatment.status_code == 200
        assert await connection.fetch(query) == before  # nothing re-applied or rewritten
    finally:
        await connection.close()
