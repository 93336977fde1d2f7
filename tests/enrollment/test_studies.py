"""Two studies side by side in one enrollment service (issue #21): a subject of SYN-CART-2
is held to SYN-CART-2's definition, the same subject id in both studies is two records,
and a token of one study is refused on the other's routes. The application keeps its
events in the real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.enrollment import errors
from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.domain import Subject, subject_record_id
from services.enrollment.publication import PUBLICATION
from services.enrollment.rules import Observation
from shared.clinical import CohortOpening, first_cohort
from shared.contracts.enrollment import SubjectEnrolledV1
from shared.kernel.principals import Principal
from shared.kernel.provenance import Attribution, Meaning
from shared.study import DEFAULT_STUDY_ID, study_definition
from shared.web.service_app import Serving
from tests.support import (
    NOW,
    SCREENING_DAY,
    VERIFIER,
    as_published,
    asgi_client,
    bearer,
    command,
    consent,
    eligible_observations,
    memory_outbox,
    principal,
    screening,
    screening_json,
    signature_json,
)

pytestmark = pytest.mark.on_postgres

SECOND = "SYN-CART-2"
FIRST_INVESTIGATOR = principal()
SECOND_INVESTIGATOR = replace(principal(), study_id=SECOND)
LOW_PLATELETS = Observation(Decimal(40), SCREENING_DAY, "10^9/L")  # >= 30 in one, >= 50 in two


class Openings:
    """The cohort open in each study: the first study's safety review opened level 2."""

    async def opening(self, study_id: str = DEFAULT_STUDY_ID) -> CohortOpening:
        if study_id == DEFAULT_STUDY_ID:
            return CohortOpening(2, 3, NOW, 1, NOW)
        return first_cohort(study_definition(study_id))


@pytest.fixture
def api(application: EnrollmentApplication) -> FastAPI:
    outbox = memory_outbox(application, PUBLICATION)
    serving = Serving(VERIFIER, outbox, lambda: NOW, studies=(DEFAULT_STUDY_ID, SECOND))
    return create_app(application, serving, cohort=Openings())


@pytest.fixture
async def client(api: FastAPI) -> Any:
    async with asgi_client(api, "enrollment") as client:
        yield client


def route(study: str | None, path: str) -> str:
    return path if study is None else f"/studies/{study}{path}"


async def post(
    client: httpx.AsyncClient, study: str | None, path: str, body: dict[str, Any]
) -> httpx.Response:
    who = SECOND_INVESTIGATOR if study == SECOND else FIRST_INVESTIGATOR
    return await client.post(route(study, path), json=body, headers=bearer(who))


async def decided(
    client: httpx.AsyncClient, study: str | None, subject_id: str, platelets: Observation
) -> dict[str, Any]:
    """The subject registered, consented, screened with ``platelets`` and decided in
    ``study`` (None: the first study's routes, without a prefix)."""
    who = SECOND_INVESTIGATOR if study == SECOND else FIRST_INVESTIGATOR
    registered = await post(client, study, "/subjects", {"subject_id": subject_id, "site_id": "Z"})
    assert registered.status_code == 201, registered.text
    consent_body = {
        "form_version": "ICF v2.1", "signed_on": "2026-11-02", "obtained_by": "Dr Lin Wei",
        "signature": signature_json(
            Meaning.RESPONSIBILITY, f"enrollment/consent/{subject_id}", who
        ),
    }  # fmt: skip
    consented = await post(client, study, f"/subjects/{subject_id}/consent", consent_body)
    assert consented.status_code == 200, consented.text
    observations = {**eligible_observations(), "platelets": platelets}
    body = screening_json(observations)
    screened = await post(client, study, f"/subjects/{subject_id}/screening", body)
    assert screened.status_code == 200, screened.text
    signature = signature_json(Meaning.APPROVAL, f"enrollment/eligibility/{subject_id}", who)
    answer = await post(
        client, study, f"/subjects/{subject_id}/eligibility", {"signature": signature}
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def test_each_route_answers_its_own_study_s_criteria(client: httpx.AsyncClient) -> None:
    first = (await client.get("/eligibility-criteria")).json()
    second = (await client.get(f"/studies/{SECOND}/eligibility-criteria")).json()
    prefixed_first = (await client.get(f"/studies/{DEFAULT_STUDY_ID}/eligibility-criteria")).json()

    assert prefixed_first == first
    assert (first["rule_version"], second["rule_version"]) == (
        "NCT05030779/def-1/eligibility/2",
        "SYN-CART-2/def-1/eligibility/2",
    )
    platelets = {b["code"]: b["requirement"] for b in second["criteria"]}["platelets"]
    assert platelets == ">= 50 10^9/L"
    assert {b["code"]: b["requirement"] for b in first["criteria"]}["platelets"] == ">= 30 10^9/L"
    missing = await client.get("/studies/NO-SUCH-STUDY/eligibility-criteria")
    assert (missing.status_code, missing.json()["code"]) == (404, "study_not_served")


async def test_the_same_subject_is_eligible_in_one_study_and_screen_failed_in_the_other(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    first = await decided(client, None, "S-001", LOW_PLATELETS)
    second = await decided(client, SECOND, "S-001", LOW_PLATELETS)

    assert first["status"] == "eligible"
    assert first["eligibility"]["rule_version"] == "NCT05030779/def-1/eligibility/2"
    assert second["status"] == "screen_failed"
    assert second["eligibility"]["failed_criteria"] == ["platelets"]
    assert second["eligibility"]["rule_version"] == "SYN-CART-2/def-1/eligibility/2"
    [platelets] = [r for r in second["eligibility"]["results"] if r["code"] == "platelets"]
    assert platelets["requirement"] == ">= 50 10^9/L"
    # two records: the first study's id as it always was, the second's in its own namespace
    one = application.get_subject("S-001")
    two = application.get_subject("S-001", SECOND)
    assert one.id == subject_record_id("S-001", study_definition()) != two.id
    assert two.id == subject_record_id("S-001", study_definition(SECOND))
    assert (one.study_id, two.study_id) == (DEFAULT_STUDY_ID, SECOND)
    # each study reads its own record on its own route
    read = await client.get(
        f"/studies/{SECOND}/subjects/S-001", headers=bearer(SECOND_INVESTIGATOR)
    )
    assert read.json()["status"] == "screen_failed"
    assert (await client.get("/subjects/S-001", headers=bearer())).json()["status"] == "eligible"
    # published: each record names its study, keyed by it; the first study's keys unchanged
    published = as_published(application, PUBLICATION)
    keys = {(e.kafka_key(DEFAULT_STUDY_ID), e.studyid) for e in published}
    assert keys == {(b"S-001", DEFAULT_STUDY_ID), (b"SYN-CART-2/S-001", SECOND)}


async def test_a_subject_registered_in_one_study_is_not_found_in_the_other(
    client: httpx.AsyncClient,
) -> None:
    await post(client, None, "/subjects", {"subject_id": "S-007", "site_id": "Z"})
    other = await client.get(
        f"/studies/{SECOND}/subjects/S-007", headers=bearer(SECOND_INVESTIGATOR)
    )
    assert (other.status_code, other.json()["code"]) == (404, "subject_not_found")
    again = await post(client, SECOND, "/subjects", {"subject_id": "S-007", "site_id": "Z"})
    assert again.status_code == 201, again.text  # not "already registered": another study's


async def test_dose_levels_and_the_open_cohort_are_the_study_s(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    await decided(client, None, "S-001", LOW_PLATELETS)
    await decided(client, SECOND, "S-002", eligible_observations()["platelets"])

    # level 4 exists in the first study (not open there now); SYN-CART-2 has three levels
    first_4 = await post(client, None, "/subjects/S-001/enrollment", {"dose_level": 4})
    assert first_4.json()["code"] == "dose_level_not_allowed"
    second_4 = await post(client, SECOND, "/subjects/S-002/enrollment", {"dose_level": 4})
    assert (second_4.status_code, second_4.json()["code"]) == (422, "invalid_dose_level")
    # the first study's review opened level 2; SYN-CART-2 has had none: its level 1
    second_2 = await post(client, SECOND, "/subjects/S-002/enrollment", {"dose_level": 2})
    assert second_2.json()["details"]["allowed_level"] == 1
    enrolled = await post(client, SECOND, "/subjects/S-002/enrollment", {"dose_level": 1})
    assert enrolled.status_code == 200, enrolled.text
    assert (await post(client, None, "/subjects/S-001/enrollment", {"dose_level": 2})).is_success
    # the dose published is the study's dose of the level: 0.5 x10^6/kg for SYN-CART-2's 1
    doses = {
        e.kafka_key(DEFAULT_STUDY_ID): e.data["dose_cells_per_kg"]
        for e in as_published(application, PUBLICATION)
        if e.type == SubjectEnrolledV1.event_type
    }
    assert {k: Decimal(v) for k, v in doses.items()} == {
        b"S-001": Decimal(2_000_000),
        b"SYN-CART-2/S-002": Decimal(500_000),
    }


@pytest.mark.parametrize(
    ("who", "path"),
    [
        (FIRST_INVESTIGATOR, f"/studies/{SECOND}/subjects"),
        (SECOND_INVESTIGATOR, "/subjects"),
        (SECOND_INVESTIGATOR, f"/studies/{DEFAULT_STUDY_ID}/subjects"),
    ],
    ids=["first-on-second", "second-unprefixed", "second-on-first"],
)
async def test_a_token_of_one_study_is_refused_on_the_other_s_routes(
    client: httpx.AsyncClient, application: EnrollmentApplication, who: Principal, path: str
) -> None:
    body = {"subject_id": "S-009", "site_id": "Z"}
    refused = await client.post(path, json=body, headers=bearer(who))
    assert (refused.status_code, refused.json()["code"]) == (403, "study_not_granted")
    with pytest.raises(errors.SubjectNotFound):
        application.get_subject("S-009", who.study_id or DEFAULT_STUDY_ID)
    with pytest.raises(errors.SubjectNotFound):
        application.get_subject("S-009", SECOND if who is FIRST_INVESTIGATOR else DEFAULT_STUDY_ID)


def in_second(attribution: Attribution) -> Attribution:
    return replace(attribution, provenance=replace(attribution.provenance, study_id=SECOND))


def test_the_domain_decides_by_the_definition_it_is_given() -> None:
    """No I/O in the domain: the study's definition comes in with the command."""
    study = study_definition(SECOND)
    subject = Subject.register("S-001", "Z", in_second(command()), None, study)
    subject.sign_consent(consent(), in_second(command()), None)
    subject.record_screening(screening(platelets=LOW_PLATELETS), in_second(command()), None, study)
    subject.decide_eligibility(in_second(command()), None, study)
    assert subject.assessment is not None
    assert subject.assessment.failed_criteria == ("platelets",)
    # a record of one study is never decided by another's rules, nor made for another
    with pytest.raises(ValueError, match="of study SYN-CART-2, not NCT05030779"):
        subject.correct("consent.form_version", "v3", "typo", command(), study_definition())
    with pytest.raises(ValueError, match="acting in NCT05030779"):
        Subject.register("S-002", "Z", command(), None, study)
