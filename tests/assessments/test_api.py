"""The assessments HTTP API through httpx's ASGI transport, over the in-memory store,
with the local views replaced by fixed answers (``client`` in conftest.py; the real views
run in tests/e2e)."""

from __future__ import annotations

from typing import Any

import httpx

from services.assessments.application import AssessmentsApplication
from shared.kernel.provenance import Meaning, Role
from tests.assessments.conftest import visit
from tests.support import NOW, bearer, principal, signature_json


async def post(client: httpx.AsyncClient, path: str, body: Any, **headers: Any) -> httpx.Response:
    return await client.post(path, json=body, headers=headers or bearer())


async def test_the_score_is_computed_from_the_items(client: httpx.AsyncClient) -> None:
    response = await post(
        client, "/subjects/S-001/disease-activity", visit(-1, "arthritis", "rash")
    )
    assert response.status_code == 201, response.text
    assert response.json()["visits"][0] | {"event_id": None} == {
        "event_id": None, "label": "day -1", "study_day": -1, "sledai_2k": 6,
        "clinical_sledai": 6,
    }  # fmt: skip


async def test_a_typed_in_score_or_a_missing_item_is_refused(client: httpx.AsyncClient) -> None:
    typed = await post(client, "/subjects/S-001/disease-activity", visit(1, sledai_2k=4))
    assert typed.status_code == 422
    body = visit(1)
    del body["items"]["fever"]
    missing = await post(client, "/subjects/S-001/disease-activity", body)
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_assessment")
    assert "fever" in missing.json()["message"]


async def test_a_subject_the_infusion_view_does_not_know_is_a_retryable_409(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, "/subjects/S-404/disease-activity", visit(1))
    assert (response.status_code, response.json()["code"]) == (409, "subject_not_infused")
    assert response.json()["details"]["retryable"] is True


async def test_remission_is_signed_for_this_record_version_and_derived(
    client: httpx.AsyncClient,
) -> None:
    await post(client, "/subjects/S-001/disease-activity", visit(-1, "arthritis", "rash"))
    record = await post(client, "/subjects/S-001/disease-activity", visit(29))
    visit_id, version = record.json()["visits"][-1]["event_id"], record.json()["version"]
    purpose = f"assessments/remission/S-001@{version}"

    stale = signature_json(Meaning.APPROVAL, f"assessments/remission/S-001@{version - 1}")
    body = {"visit_event_id": visit_id, "response": "complete", "signature": stale}
    stale_answer = await post(client, "/subjects/S-001/remission", body)  # a race lost
    assert (stale_answer.status_code, stale_answer.json()["code"]) == (409, "record_changed")

    wrong = {**body, "response": "partial", "signature": signature_json(Meaning.APPROVAL, purpose)}
    refused = await post(client, "/subjects/S-001/remission", wrong)
    assert (refused.status_code, refused.json()["details"]["derived"]) == (422, "complete")

    body["signature"] = signature_json(Meaning.APPROVAL, purpose)
    signed = await post(client, "/subjects/S-001/remission", body)
    assert signed.status_code == 201, signed.text
    assert signed.json()["remissions"] == {visit_id: "complete"}
    assert signed.json()["signatures"][0]["meaning"] == "approval"


async def test_kinetics_unit_must_fit_the_method(client: httpx.AsyncClient) -> None:
    body = {"sampled_at": NOW.isoformat(), "sample": "bone_marrow", "method": "flow_cytometry",
            "target": "cd19", "value": "12", "unit": "copies/ug gDNA", "lloq": "1"}  # fmt: skip
    response = await post(client, "/subjects/S-001/car-t-kinetics", body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_assessment")


async def test_roles_are_checked_and_refusals_recorded(
    client: httpx.AsyncClient, application: AssessmentsApplication
) -> None:
    assert (await client.post("/subjects/S-001/disease-activity", json=visit(1))).status_code == 401
    monitor = bearer(principal(Role.MONITOR, user_id="u-mon-1"))
    response = await post(client, "/subjects/S-001/disease-activity", visit(1), **monitor)
    assert response.status_code == 403
    denials = [e for _, e in application.stored_events() if type(e).__name__ == "AccessDenied"]
    assert [d.denial.command for d in denials] == ["assessments.assess_activity"]
    coordinator = bearer(principal(Role.STUDY_COORDINATOR, user_id="u-sc-1"))
    kinetics = {"sampled_at": NOW.isoformat(), "sample": "peripheral_blood",
                "method": "qpcr", "target": "total", "value": "900",
                "unit": "copies/ug gDNA", "lloq": "50"}  # fmt: skip
    assert (
        await post(client, "/subjects/S-001/car-t-kinetics", kinetics, **coordinator)
    ).is_success
