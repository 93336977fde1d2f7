"""The adverse-events HTTP API through httpx's ASGI transport, over the in-memory store,
with the infusion view replaced by fixed answers (``client`` in conftest.py; the real view
runs in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.domain import AdverseEvent
from shared.kernel.access import AccessDenial
from shared.kernel.provenance import Meaning, Role
from tests.adverse_events.conftest import COHORT
from tests.support import bearer, principal, signature_json, stored_count

GRADE_2_CRS = {"temperature_c": "38.9", "antipyretics_or_immunosuppression_given": False,
               "hypotension": "no_vasopressor", "oxygen": "none"}  # fmt: skip


async def report(client: httpx.AsyncClient, subject: str = "S-001") -> httpx.Response:
    onset = (COHORT.get(subject, COHORT["S-001"]).infused_at + timedelta(days=1)).isoformat()
    body = {"term": "Cytokine release syndrome", "verbatim": "fever", "onset_at": onset}
    return await client.post(f"/subjects/{subject}/adverse-events", json=body, headers=bearer())


async def test_a_report_derives_study_day_and_windows_and_is_read_back(
    client: httpx.AsyncClient,
) -> None:
    reported = await report(client)
    assert reported.status_code == 201, reported.text
    body = reported.json()
    assert (body["subject_id"], body["study_day"], body["treatment_emergent"]) == (
        "S-001",
        1,  # the day after the infusion's date (day 0)
        True,
    )
    assert body["study_day_convention"] == "infusion_day_0"
    assert body["in_dlt_window"] is True and body["grade"] is None
    read = await client.get(f"/adverse-events/{body['id']}", headers=bearer())
    assert read.status_code == 200 and read.json() == body


async def test_a_subject_never_infused_has_no_adverse_event_recorded(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    refused = await report(client, "S-404")
    assert (refused.status_code, refused.json()["code"]) == (409, "subject_not_infused")
    assert stored_count(application, AdverseEvent.AdverseEventReported) == 0


async def grade(
    client: httpx.AsyncClient, reported: dict[str, Any], body: dict[str, Any], purpose: str = ""
) -> httpx.Response:
    """Grade ``reported`` with ``body``, signed for ``purpose`` (its grading at its
    current version, unless another is named)."""
    purpose = purpose or f"adverse_events/grade/{reported['id']}@{reported['version']}"
    signed = {**body, "signature": signature_json(Meaning.AUTHORSHIP, purpose)}
    return await client.post(f"/adverse-events/{reported['id']}/grade", json=signed,
                             headers=bearer())  # fmt: skip


async def test_crs_is_graded_from_its_astct_components_and_signed(
    client: httpx.AsyncClient,
) -> None:
    reported = (await report(client)).json()

    graded = await grade(client, reported, {"crs": GRADE_2_CRS})

    assert graded.status_code == 200, graded.text
    assert (graded.json()["grade"], graded.json()["scale"]) == (2, "ASTCT-CRS")
    [signature] = graded.json()["signatures"]
    assert signature["meaning"] == "authorship"


async def test_a_ctcae_grade_5_without_a_recorded_death_is_a_422_naming_why(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    onset = (COHORT["S-001"].infused_at + timedelta(days=3)).isoformat()
    body = {"term": "Sepsis", "verbatim": "septic shock", "onset_at": onset}
    reported = (await client.post("/subjects/S-001/adverse-events", json=body,
                                  headers=bearer())).json()  # fmt: skip
    refused = await grade(client, reported, {"grade": 5})
    assert (refused.status_code, refused.json()["code"]) == (422, "grade_5_without_death")
    assert stored_count(application, AdverseEvent.AdverseEventGraded) == 0


@pytest.mark.part11("11.200(a)")
async def test_a_signature_made_for_another_purpose_is_refused(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    reported = (await report(client)).json()
    refused = await grade(client, reported, {"crs": GRADE_2_CRS}, "adverse_events/grade/another@1")
    assert (refused.status_code, refused.json()["code"]) == (403, "signature_refused")
    assert stored_count(application, AdverseEvent.AdverseEventGraded) == 0


@pytest.mark.part11("11.70")
async def test_a_signature_of_the_version_before_another_change_is_a_409_to_sign_again(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    reported = (await report(client)).json()
    before = f"adverse_events/causality/{reported['id']}@{reported['version']}"
    graded = await grade(client, reported, {"crs": GRADE_2_CRS})
    assert graded.status_code == 200, graded.text
    causality = {"car_t": "probable", "lymphodepletion": "unlikely",
                 "signature": signature_json(Meaning.AUTHORSHIP, before)}  # fmt: skip
    refused = await client.post(f"/adverse-events/{reported['id']}/causality", json=causality,
                                headers=bearer())  # fmt: skip

    assert (refused.status_code, refused.json()["code"]) == (409, "record_changed")
    assert refused.json()["details"] == {
        "signed_version": reported["version"], "current_version": graded.json()["version"]
    }  # fmt: skip
    assert stored_count(application, AdverseEvent.CausalityAssessed) == 0
    assert stored_count(application, AccessDenial.AccessDenied) == 0  # a race, not a refusal


async def test_the_cohort_shows_the_full_first_cohort_and_a_review_opens_level_2(
    client: httpx.AsyncClient,
) -> None:
    before = await client.get("/cohort", headers=bearer())
    assert before.status_code == 200, before.text
    assert before.json()["reviews"] == 0

    signature = signature_json(Meaning.APPROVAL, "adverse_events/safety-review/1")
    body = {"approved_level": 2, "signature": signature}
    approved = await client.post("/safety-reviews", json=body, headers=bearer())

    assert approved.status_code == 201, approved.text
    assert (approved.json()["approved_level"], approved.json()["review"]) == (2, 1)
    assert (await client.get("/cohort", headers=bearer())).json()["reviews"] == 1


async def test_a_monitor_reads_but_does_not_report(client: httpx.AsyncClient) -> None:
    monitor = bearer(principal(Role.MONITOR, user_id="u-mon-1"))
    onset = (COHORT["S-001"].infused_at + timedelta(days=1)).isoformat()
    body = {"term": "Cytokine release syndrome", "verbatim": "fever", "onset_at": onset}
    refused = await client.post("/subjects/S-001/adverse-events", json=body, headers=monitor)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_not_permitted")
    assert (await client.get("/cohort", headers=monitor)).status_code == 200
