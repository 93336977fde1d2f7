"""The HTTP API through httpx's ASGI transport, over the in-memory store (``client`` in
conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.enrollment.application import EnrollmentApplication
from services.enrollment.rules import CRITERIA, Observation
from shared.kernel.provenance import Meaning, Role
from shared.web.auth import Principal, TokenIssuer
from tests.support import (
    SCREENING_DAY,
    TOKEN_KEY,
    bearer,
    eligible_observations,
    principal,
    screening_json,
    signature_json,
)


def consent_body(subject_id: str, who: Principal | None = None, **changes: Any) -> dict[str, Any]:
    purpose = f"enrollment/consent/{subject_id}"
    body = {
        "form_version": "ICF v2.1",
        "signed_on": "2026-11-02",
        "obtained_by": "Dr Lin Wei",
        "signature": signature_json(Meaning.RESPONSIBILITY, purpose, who),
    }
    return {**body, **changes}


def decision_body(subject_id: str) -> dict[str, Any]:
    purpose = f"enrollment/eligibility/{subject_id}"
    return {"signature": signature_json(Meaning.APPROVAL, purpose)}


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers=bearer())


async def through_screening(client: httpx.AsyncClient, subject_id: str = "S-001") -> None:
    assert (
        await post(client, "/subjects", {"subject_id": subject_id, "site_id": "ZJU-1"})
    ).status_code == 201
    assert (
        await post(client, f"/subjects/{subject_id}/consent", consent_body(subject_id))
    ).status_code == 200
    response = await post(client, f"/subjects/{subject_id}/screening", screening_json())
    assert response.status_code == 200, response.text


async def test_walks_a_subject_from_registration_to_enrollment(client: httpx.AsyncClient) -> None:
    await through_screening(client)
    decided = await post(client, "/subjects/S-001/eligibility", decision_body("S-001"))
    assert decided.json()["eligibility"]["eligible"] is True
    enrolled = await post(client, "/subjects/S-001/enrollment", {"dose_level": 1})
    assert enrolled.status_code == 200
    body = enrolled.json()
    assert (body["status"], body["dose_level"], body["version"]) == ("enrolled", 1, 7)


async def test_the_path_first_published_still_enrolls(client: httpx.AsyncClient) -> None:
    """The path first published (one letter short) stays as a deprecated alias."""
    await through_screening(client, "S-009")
    await post(client, "/subjects/S-009/eligibility", decision_body("S-009"))
    enrolled = await post(client, "/subjects/S-009/enrol" + "ment", {"dose_level": 1})
    assert enrolled.status_code == 200, enrolled.text
    assert (enrolled.json()["status"], enrolled.json()["dose_level"]) == ("enrolled", 1)


async def test_screen_failure_names_failed_criteria(client: httpx.AsyncClient) -> None:
    observations = {
        **eligible_observations(),
        "bilirubin": Observation(Decimal(40), SCREENING_DAY, "µmol/L"),
    }
    await post(client, "/subjects", {"subject_id": "S-002", "site_id": "ZJU-1"})
    await post(client, "/subjects/S-002/consent", consent_body("S-002"))
    await post(client, "/subjects/S-002/screening", screening_json(observations))
    decided = (await post(client, "/subjects/S-002/eligibility", decision_body("S-002"))).json()
    assert decided["status"] == "screen_failed"
    assert decided["eligibility"]["failed_criteria"] == ["bilirubin"]


@pytest.mark.part11("11.10(d)")
async def test_no_token_is_401_with_a_code(client: httpx.AsyncClient) -> None:
    response = await client.post("/subjects", json={"subject_id": "S-1", "site_id": "ZJU-1"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.part11("11.10(d)")
async def test_token_signed_by_another_key_is_401(client: httpx.AsyncClient) -> None:
    forger = TokenIssuer(Ed25519PrivateKey.generate())
    token, _ = forger.access_token(principal(), datetime.now(UTC))
    response = await client.post(
        "/subjects",
        json={"subject_id": "S-1", "site_id": "Z"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


@pytest.mark.part11("11.10(d)")
async def test_expired_token_is_401(client: httpx.AsyncClient) -> None:
    token, _ = TokenIssuer(TOKEN_KEY).access_token(
        principal(), datetime.now(UTC) - timedelta(hours=1)
    )
    response = await client.get("/subjects/S-1", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")


@pytest.mark.part11("11.10(g)")
async def test_wrong_role_is_403_and_the_denial_is_recorded(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    monitor = principal(Role.MONITOR, user_id="u-mon-1")
    response = await client.post(
        "/subjects", json={"subject_id": "S-1", "site_id": "Z"}, headers=bearer(monitor)
    )
    assert (response.status_code, response.json()["code"]) == (403, "role_not_permitted")
    [notification] = application.notification_log.select(1, 10)
    denial: Any = application.mapper.to_domain_event(notification)
    assert type(denial).__name__ == "AccessDenied"
    assert (denial.denial.user_id, denial.denial.command) == (
        "u-mon-1",
        "enrollment.register_subject",
    )


@pytest.mark.part11("11.10(g)")
async def test_signature_of_another_user_is_refused(client: httpx.AsyncClient) -> None:
    await post(client, "/subjects", {"subject_id": "S-011", "site_id": "ZJU-1"})
    body = consent_body("S-011", principal(user_id="u-inv-2"))
    response = await post(client, "/subjects/S-011/consent", body)
    assert (response.status_code, response.json()["code"]) == (403, "signature_refused")


async def test_signature_with_the_wrong_meaning_is_refused(client: httpx.AsyncClient) -> None:
    await post(client, "/subjects", {"subject_id": "S-012", "site_id": "ZJU-1"})
    body = consent_body(
        "S-012", signature=signature_json(Meaning.AUTHORSHIP, "enrollment/consent/S-012")
    )
    response = await post(client, "/subjects/S-012/consent", body)
    assert (response.status_code, response.json()["code"]) == (403, "signature_refused")


@pytest.mark.part11("11.10(g)")
async def test_signature_for_another_subject_is_refused_and_recorded(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    await post(client, "/subjects", {"subject_id": "S-015", "site_id": "ZJU-1"})
    body = consent_body(
        "S-015",
        signature=signature_json(Meaning.RESPONSIBILITY, "enrollment/consent/S-001"),
    )
    response = await post(client, "/subjects/S-015/consent", body)
    assert (response.status_code, response.json()["code"]) == (403, "signature_refused")
    last = application.notification_log.select(1, 10)[-1]
    assert type(application.mapper.to_domain_event(last)).__name__ == "AccessDenied"


async def test_consent_without_signature_is_422(client: httpx.AsyncClient) -> None:
    await post(client, "/subjects", {"subject_id": "S-013", "site_id": "ZJU-1"})
    body = {k: v for k, v in consent_body("S-013").items() if k != "signature"}
    response = await post(client, "/subjects/S-013/consent", body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


@pytest.mark.part11("11.50")
async def test_signed_consent_shows_the_signature_manifestation(
    client: httpx.AsyncClient,
) -> None:
    await post(client, "/subjects", {"subject_id": "S-014", "site_id": "ZJU-1"})
    subject = (await post(client, "/subjects/S-014/consent", consent_body("S-014"))).json()
    [signature] = subject["signatures"]
    assert signature["printed_name"] == "Dr Lin Wei"
    assert (signature["meaning"], signature["record_version"]) == ("responsibility", 2)


@pytest.mark.part11("11.10(f)")
async def test_out_of_sequence_command_is_409_with_a_code(client: httpx.AsyncClient) -> None:
    await post(client, "/subjects", {"subject_id": "S-003", "site_id": "ZJU-1"})
    response = await post(client, "/subjects/S-003/screening", screening_json())
    assert response.status_code == 409
    assert response.json()["code"] == "consent_required"
    assert response.json()["details"] == {"subject_id": "S-003"}


async def test_unknown_subject_is_404(client: httpx.AsyncClient) -> None:
    response = await post(client, "/subjects/S-404/consent", consent_body("S-404"))
    assert (response.status_code, response.json()["code"]) == (404, "subject_not_found")


async def test_bad_unit_is_422_naming_the_criterion(client: httpx.AsyncClient) -> None:
    observations = {**eligible_observations()}
    observations["creatinine"] = Observation(Decimal(1), SCREENING_DAY, "mg")
    await post(client, "/subjects", {"subject_id": "S-004", "site_id": "ZJU-1"})
    await post(client, "/subjects/S-004/consent", consent_body("S-004"))
    response = await post(client, "/subjects/S-004/screening", screening_json(observations))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_observation"
    assert response.json()["details"]["criterion"] == "creatinine"


@pytest.mark.part11("11.10(h)")
async def test_malformed_body_is_422_invalid_request(client: httpx.AsyncClient) -> None:
    response = await post(client, "/subjects", {"subject_id": "S-5", "site": "ZJU-1"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


@pytest.mark.part11("11.10(h)")
async def test_refused_command_leaves_the_record_untouched(client: httpx.AsyncClient) -> None:
    await through_screening(client, "S-006")
    refused = await post(client, "/subjects/S-006/enrollment", {"dose_level": 2})
    assert refused.json()["code"] == "not_eligible"
    subject = (await client.get("/subjects/S-006", headers=bearer())).json()
    assert (subject["status"], subject["version"]) == ("screened", 4)


async def test_correction_of_a_screening_value(client: httpx.AsyncClient) -> None:
    await through_screening(client, "S-007")
    body = {
        "field": "screening.creatinine",
        "new_value": {"value": "1.1", "unit": "mg/dL", "observed_on": "2026-11-05"},
        "reason": "lab re-issued the report",
    }
    response = await post(client, "/subjects/S-007/corrections", body)
    assert response.status_code == 200, response.text
    corrected = response.json()["screening"]["observations"]["creatinine"]
    assert corrected["value"] == "1.1"


async def test_correction_with_a_malformed_value_is_422(client: httpx.AsyncClient) -> None:
    await through_screening(client, "S-008")
    body = {"field": "consent.signed_on", "new_value": "yesterday", "reason": "typo"}
    response = await post(client, "/subjects/S-008/corrections", body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_correction_value")


@pytest.mark.parametrize("new_value", [20261102, "20261102"])
async def test_a_corrected_date_is_iso_text_not_a_number(
    client: httpx.AsyncClient, new_value: object
) -> None:
    await through_screening(client, "S-018")
    body = {"field": "consent.signed_on", "new_value": new_value, "reason": "typo"}
    response = await post(client, "/subjects/S-018/corrections", body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_correction_value")


async def test_a_date_time_is_never_a_number(client: httpx.AsyncClient) -> None:
    body = {"subject_id": "S-019", "site_id": "ZJU-1", "occurred_at": 1700000000}
    response = await post(client, "/subjects", body)
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == ["body", "occurred_at"]
    assert (await client.get("/subjects/S-019", headers=bearer())).status_code == 404


async def test_a_text_longer_than_its_field_takes_is_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    await post(client, "/subjects", {"subject_id": "S-020", "site_id": "ZJU-1"})
    body = {"field": "consent." + "x" * 200, "new_value": "v2", "reason": "typo"}
    response = await post(client, "/subjects/S-020/corrections", body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
    assert response.json()["details"]["errors"][0]["location"] == ["body", "field"]


@pytest.mark.parametrize("value", ["9E+999999", "1" + "0" * 4000, 1e300])
async def test_a_number_too_large_to_normalise_is_422_naming_the_criterion(
    client: httpx.AsyncClient, value: object
) -> None:
    await post(client, "/subjects", {"subject_id": "S-021", "site_id": "ZJU-1"})
    await post(client, "/subjects/S-021/consent", consent_body("S-021"))
    body = screening_json()
    body["observations"]["creatinine"]["value"] = value
    response = await post(client, "/subjects/S-021/screening", body)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_observation")
    assert response.json()["details"]["criterion"] == "creatinine"


@pytest.mark.part11("UTC")
async def test_a_date_time_that_is_out_of_range_in_utc_is_422_not_stored(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    # it was stored, and its publication (in UTC) then overflowed: the relay stopped on it
    body = {"subject_id": "S-022", "site_id": "ZJU-1", "occurred_at": "0001-01-01T00:00:00+01:00"}
    response = await post(client, "/subjects", body)
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == ["body", "occurred_at"]
    assert list(application.stored_events()) == []


async def test_withdrawal_without_reason_is_422(client: httpx.AsyncClient) -> None:
    await post(client, "/subjects", {"subject_id": "S-009", "site_id": "ZJU-1"})
    response = await post(client, "/subjects/S-009/withdrawal", {"reason": ""})
    assert response.status_code == 422


async def test_lists_every_criterion_with_its_rule_version(client: httpx.AsyncClient) -> None:
    body = (await client.get("/eligibility-criteria")).json()
    assert body["rule_version"] == "NCT05030779/def-1/eligibility/2"
    assert [c["code"] for c in body["criteria"]] == [c.code for c in CRITERIA]


async def test_openapi_document_describes_the_commands(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "/subjects/{subject_id}/corrections" in document["paths"]
    assert "ErrorBody" in document["components"]["schemas"]


async def test_numbers_may_be_sent_as_json_numbers(client: httpx.AsyncClient) -> None:
    body = screening_json()
    body["observations"]["platelets"]["value"] = 29.5
    await post(client, "/subjects", {"subject_id": "S-010", "site_id": "ZJU-1"})
    await post(client, "/subjects/S-010/consent", consent_body("S-010"))
    assert (await post(client, "/subjects/S-010/screening", body)).status_code == 200
    decided = (await post(client, "/subjects/S-010/eligibility", decision_body("S-010"))).json()
    assert decided["eligibility"]["failed_criteria"] == ["platelets"]
