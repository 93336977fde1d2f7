"""End to end: an infused subject reaches the adverse-events service's view through real
Kafka; CRS is reported, graded from its components and adjudicated as a DLT, all signed;
the events reach their topic and the projections' subject state shows the safety
summary and the DLT flag."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.kernel.envelope import CloudEvent
from shared.kernel.signatures import verify_published
from tests.e2e.flows import PASSWORD, once_seen, site_team, treat
from tests.e2e.stack import Stack
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration


async def test_crs_is_graded_adjudicated_and_reaches_the_ledger(stack: Stack) -> None:
    team = await site_team(stack)
    session = team.investigator
    await stack.create_user("aud.kim", PASSWORD, "auditor")
    infused_at = await treat(team, "S-501", level=1)

    onset_at = datetime.now(UTC) - timedelta(minutes=30)
    onset = onset_at.isoformat()
    report = {"term": "Cytokine release syndrome", "verbatim": "fever 39.2, on 2 pressors",
              "onset_at": onset}  # fmt: skip

    async def report_crs() -> httpx.Response:
        path = "/subjects/S-501/adverse-events"
        return await stack.adverse_events.post(path, json=report, headers=session)

    record = await once_seen(report_crs, 201, "the adverse-events view sees S-501 infused")
    day = (onset_at.date() - infused_at.astimezone(UTC).date()).days  # the infusion: day 0
    assert (record["study_day"], record["treatment_emergent"], record["in_dlt_window"]) == (
        day, True, True
    )  # fmt: skip
    assert record["study_day_convention"] == "infusion_day_0"
    rid, version = record["id"], record["version"]

    sign = await stack.signature(session, "authorship", f"adverse_events/grade/{rid}@{version}",
                                 PASSWORD)  # fmt: skip
    crs = {"temperature_c": "39.2", "antipyretics_or_immunosuppression_given": False,
           "hypotension": "multiple_vasopressors", "oxygen": "low_flow"}  # fmt: skip
    graded = await stack.adverse_events.post(
        f"/adverse-events/{rid}/grade", json={"crs": crs, "signature": sign}, headers=session
    )
    assert graded.status_code == 200, graded.text
    assert (graded.json()["scale"], graded.json()["grade"]) == ("ASTCT-CRS", 4)

    version = graded.json()["version"]
    sign = await stack.signature(session, "approval", f"adverse_events/dlt/{rid}@{version}",
                                 PASSWORD)  # fmt: skip
    dlt = {"is_dlt": True, "criterion": "crs_grade_4", "reason": "grade 4 CRS on day 1",
           "signature": sign}  # fmt: skip
    adjudicated = await stack.adverse_events.post(f"/adverse-events/{rid}/dlt", json=dlt,
                                                  headers=session)  # fmt: skip
    assert adjudicated.status_code == 200, adjudicated.text
    assert adjudicated.json()["dlt"] is True

    settings = stack.adverse_events_settings
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=5)
    assert [CloudEvent.from_kafka_value(r.value).type for r in records] == [
        "AdverseEventReported.v1", "AdverseEventGraded.v1", "RecordSigned.v2",
        "DltAdjudicated.v1", "RecordSigned.v2",
    ]  # fmt: skip
    wire = [json.loads(r.value) for r in records]
    assert verify_published(wire[1], wire[2], stack.record_public_key())
    assert verify_published(wire[3], wire[4], stack.record_public_key())

    auditor = await stack.log_in("aud.kim", PASSWORD)

    async def projected() -> bool:
        state = (await stack.projections.get("/subjects/S-501", headers=auditor)).json()
        return bool(state.get("dlt"))

    await eventually(projected, what="the DLT in the projections' subject state")
    state = (await stack.projections.get("/subjects/S-501", headers=auditor)).json()
    assert state["safety"] == {"worst_grade": 4, "worst_crs": 4, "worst_icans": 0}
    assert state["infusion"]["dose_level"] == 1

    cohort = (await stack.adverse_events.get("/cohort", headers=session)).json()
    assert (cohort["level"], cohort["dosed"], cohort["dlts"], cohort["open_windows"]) == (
        1,
        1,
        1,
        1,
    )
    assert cohort["decision"] == "enrol_same_level"
