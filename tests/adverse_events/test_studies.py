"""Two studies served by one adverse-events service (issue #21): a command acts in the
study of its route (and token), and is judged by THAT study's definition: its DLT and
TEAE windows, its DLT criteria, its 3+3 design; its reviews and DLTs are counted apart;
the same subject id in both studies is two subjects; a token of one study is refused on
the other's route.

NCT05030779: DLT window days 0-28, TEAE to day 90. SYN-CART-2 (synthetic): DLT window
days 0-21, TEAE to day 60, three dose levels. The infusion view's rows are keyed as the
infusion records' Kafka keys, ``record_key(study, subject)``. The cohort and review test
keeps its events and facts in the real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.adverse_events.api import create_app
from services.adverse_events.application import AdverseEventsApplication, study_rules
from services.adverse_events.dlt import Course, DltCriterion, supports
from services.adverse_events.domain import AdverseEvent, SafetyReview, safety_review_id
from services.adverse_events.publication import PUBLICATION
from shared.clinical import Infused
from shared.kernel.principals import Principal
from shared.kernel.provenance import Meaning
from shared.study import DEFAULT_STUDY_ID, record_key, study_definition
from shared.web.service_app import Serving
from tests.support import NOW, VERIFIER, asgi_client, bearer, memory_outbox, principal
from tests.support import signature_json as signed

OTHER = "SYN-CART-2"
# the same subject ids in both studies, infused 25 days ago at level 1: NCT05030779's DLT
# windows (to day 28) are open, SYN-CART-2's (to day 21) closed
INFUSED = Infused(NOW - timedelta(days=25), 1)
SUBJECTS = ("S-001", "S-002", "S-003")
ROWS = {record_key(study, s): INFUSED for study in (DEFAULT_STUDY_ID, OTHER) for s in SUBJECTS}
# S-080, infused 80 days ago in both, is in the view only for the TEAE test (a 4th subject
# at level 1 would not be a 3+3 cohort)
LATE = Infused(NOW - timedelta(days=80), 1)
GRADE_2_CRS = {"temperature_c": "38.9", "antipyretics_or_immunosuppression_given": False,
               "hypotension": "no_vasopressor", "oxygen": "none"}  # fmt: skip


class Infusions:
    """The infusion view's answers, keyed by record_key(study, subject)."""

    async def infused(self, key: str) -> Infused | None:
        return ROWS.get(key)

    async def all_infused(self, study_id: str = DEFAULT_STUDY_ID) -> dict[str, Infused]:
        """As the view answers: the study's rows, by subject id."""
        prefix = record_key(study_id, "")
        return {
            key.removeprefix(prefix): row
            for key, row in ROWS.items()
            if (key.startswith(prefix) if prefix else "/" not in key)
        }


def prefix(study: str) -> str:
    return "" if study == DEFAULT_STUDY_ID else f"/studies/{study}"


def who(study: str) -> Principal:
    """An investigator acting in ``study`` (the first study's token names none)."""
    return replace(principal(), study_id=None if study == DEFAULT_STUDY_ID else study)


def headers(study: str) -> dict[str, str]:
    """An investigator's token for ``study``."""
    return bearer(who(study))


@pytest.fixture
def api(application: AdverseEventsApplication) -> FastAPI:
    view: Any = Infusions()
    outbox = memory_outbox(application, PUBLICATION)
    serving = Serving(VERIFIER, outbox, lambda: NOW, studies=(DEFAULT_STUDY_ID, OTHER))
    return create_app(application, view, serving)


async def report(
    client: httpx.AsyncClient,
    study: str,
    days: int,
    subject: str = "S-001",
    infused: Infused = INFUSED,
) -> httpx.Response:
    onset = (infused.infused_at + timedelta(days=days)).isoformat()
    body = {"term": "Cytokine release syndrome", "verbatim": "fever", "onset_at": onset}
    return await client.post(
        f"{prefix(study)}/subjects/{subject}/adverse-events", json=body, headers=headers(study)
    )


def reported(application: AdverseEventsApplication) -> list[Any]:
    return [e for _, e in application.stored_events()
            if type(e) is AdverseEvent.AdverseEventReported]  # fmt: skip


async def test_an_event_on_day_25_is_in_one_study_s_dlt_window_and_not_the_other_s(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    first = await report(client, DEFAULT_STUDY_ID, 25)
    other = await report(client, OTHER, 25)

    assert first.status_code == other.status_code == 201, (first.text, other.text)
    assert (first.json()["study_day"], first.json()["in_dlt_window"]) == (25, True)
    assert (other.json()["study_day"], other.json()["in_dlt_window"]) == (25, False)
    assert first.json()["id"] != other.json()["id"]  # one subject id, two studies' events
    versions = {e.provenance.study_id: e.rule_version for e in reported(application)}
    assert versions == {
        DEFAULT_STUDY_ID: study_definition().rule_version("windows", 2),
        OTHER: study_definition(OTHER).rule_version("windows", 2),
    }
    assert versions[OTHER].startswith(f"{OTHER}/def-")


async def test_treatment_emergence_follows_each_study_s_teae_window(
    client: httpx.AsyncClient,
) -> None:
    # day 70: within NCT05030779's TEAE window (to day 90), after SYN-CART-2's (to day 60)
    ROWS.update({record_key(s, "S-080"): LATE for s in (DEFAULT_STUDY_ID, OTHER)})
    try:
        first = await report(client, DEFAULT_STUDY_ID, 70, "S-080", LATE)
        other = await report(client, OTHER, 70, "S-080", LATE)
    finally:
        for study in (DEFAULT_STUDY_ID, OTHER):
            del ROWS[record_key(study, "S-080")]
    assert (first.json()["treatment_emergent"], other.json()["treatment_emergent"]) == (
        True,
        False,
    )


async def grade_4(client: httpx.AsyncClient, study: str, event: dict[str, Any]) -> dict[str, Any]:
    purpose = f"adverse_events/grade/{event['id']}@{event['version']}"
    body = {"crs": GRADE_2_CRS, "grade": 4, "reason": "vasopressors started overnight",
            "signature": signed(Meaning.AUTHORSHIP, purpose, who(study))}  # fmt: skip
    graded = await client.post(
        f"{prefix(study)}/adverse-events/{event['id']}/grade", json=body, headers=headers(study)
    )
    assert graded.status_code == 200, graded.text
    result: dict[str, Any] = graded.json()
    return result


async def adjudicate(
    client: httpx.AsyncClient, study: str, event: dict[str, Any]
) -> httpx.Response:
    purpose = f"adverse_events/dlt/{event['id']}@{event['version']}"
    body = {"is_dlt": True, "criterion": "crs_grade_4", "reason": "grade 4 CRS",
            "signature": signed(Meaning.APPROVAL, purpose, who(study))}  # fmt: skip
    return await client.post(
        f"{prefix(study)}/adverse-events/{event['id']}/dlt", json=body, headers=headers(study)
    )


async def test_a_dlt_is_adjudicated_by_the_study_s_window_and_rules(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    first = await grade_4(
        client, DEFAULT_STUDY_ID, (await report(client, DEFAULT_STUDY_ID, 25)).json()
    )
    other = await grade_4(client, OTHER, (await report(client, OTHER, 25)).json())

    refused = await adjudicate(client, OTHER, other)
    accepted = await adjudicate(client, DEFAULT_STUDY_ID, first)

    assert (refused.status_code, refused.json()["code"]) == (422, "not_a_dlt")
    assert "days 0-21" in refused.json()["message"]
    assert accepted.status_code == 200, accepted.text
    adjudicated: Any
    [adjudicated] = [e for _, e in application.stored_events()
                     if type(e) is AdverseEvent.DltAdjudicated]  # fmt: skip
    assert adjudicated.rule_version == study_definition().rule_version("dlt", 3)


async def test_a_dlt_in_one_study_is_not_counted_in_the_other_s_cohort(
    client: httpx.AsyncClient,
) -> None:
    event = await grade_4(client, OTHER, (await report(client, OTHER, 5)).json())
    assert (await adjudicate(client, OTHER, event)).status_code == 200

    other = (await client.get(f"{prefix(OTHER)}/cohort", headers=headers(OTHER))).json()
    first = (await client.get("/cohort", headers=headers(DEFAULT_STUDY_ID))).json()
    assert (other["dlts"], first["dlts"]) == (1, 0)
    assert other["rule_version"] == study_definition(OTHER).rule_version("escalation", 2)
    assert first["rule_version"] == study_definition().rule_version("escalation", 2)


@pytest.mark.on_postgres
async def test_escalation_and_reviews_are_counted_per_study(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    # the same three subjects 25 days after their infusions: SYN-CART-2's windows have
    # closed (0/3: escalate), NCT05030779's are open (wait)
    other = (await client.get(f"{prefix(OTHER)}/cohort", headers=headers(OTHER))).json()
    first = (await client.get("/cohort", headers=headers(DEFAULT_STUDY_ID))).json()
    assert (other["decision"], other["next_level"], other["open_windows"]) == ("escalate", 2, 0)
    assert (first["decision"], first["next_level"], first["open_windows"]) == ("wait", None, 3)

    def body(study: str) -> dict[str, Any]:
        review = signed(Meaning.APPROVAL, "adverse_events/safety-review/1", who(study))
        return {"approved_level": 2, "signature": review}

    refused = await client.post(
        "/safety-reviews", json=body(DEFAULT_STUDY_ID), headers=headers(DEFAULT_STUDY_ID)
    )
    approved = await client.post(
        f"{prefix(OTHER)}/safety-reviews", json=body(OTHER), headers=headers(OTHER)
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "safety_review_refused")
    assert approved.status_code == 201, approved.text
    assert approved.json()["review"] == 1
    # review 1 of SYN-CART-2 is named in its own namespace; the first study's review 1 keeps
    # its id free, and its count of reviews is still 0
    assert approved.json()["id"] != str(safety_review_id(1, study_rules(DEFAULT_STUDY_ID).reviews))
    assert approved.json()["id"] == str(safety_review_id(1, study_rules(OTHER).reviews))
    first = (await client.get("/cohort", headers=headers(DEFAULT_STUDY_ID))).json()
    other = (await client.get(f"{prefix(OTHER)}/cohort", headers=headers(OTHER))).json()
    assert (first["reviews"], other["reviews"]) == (0, 1)
    assert (application.reviews_so_far(), application.reviews_so_far(OTHER)) == (0, 1)
    review: Any
    [review] = [e for _, e in application.stored_events()
                if type(e) is SafetyReview.SafetyReviewApproved]  # fmt: skip
    assert (review.cohort_size, review.rule_version) == (
        study_definition(OTHER).escalation.cohort_size,
        study_definition(OTHER).rule_version("escalation", 2),
    )


@pytest.mark.parametrize(("token", "route"), [(OTHER, DEFAULT_STUDY_ID), (DEFAULT_STUDY_ID, OTHER)])
async def test_a_token_of_one_study_is_refused_on_the_other_s_route(
    client: httpx.AsyncClient, application: AdverseEventsApplication, token: str, route: str
) -> None:
    onset = (INFUSED.infused_at + timedelta(days=1)).isoformat()
    body = {"term": "Cytokine release syndrome", "verbatim": "fever", "onset_at": onset}
    refused = await client.post(
        f"{prefix(route)}/subjects/S-001/adverse-events", json=body, headers=headers(token)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "study_not_granted")
    assert reported(application) == []


async def test_an_event_of_one_study_is_not_found_on_the_other_s_route(
    client: httpx.AsyncClient,
) -> None:
    event = (await report(client, OTHER, 1)).json()
    mine = await client.get(f"{prefix(OTHER)}/adverse-events/{event['id']}", headers=headers(OTHER))
    theirs = await client.get(f"/adverse-events/{event['id']}", headers=headers(DEFAULT_STUDY_ID))
    resolve = await client.post(
        f"/adverse-events/{event['id']}/resolution",
        json={"ended_on": NOW.date().isoformat(), "outcome": "recovered"},
        headers=headers(DEFAULT_STUDY_ID),
    )
    assert mine.status_code == 200, mine.text
    assert (theirs.status_code, theirs.json()["code"]) == (404, "adverse_event_not_found")
    assert (resolve.status_code, resolve.json()["code"]) == (404, "adverse_event_not_found")


async def test_a_subject_infused_in_one_study_only_is_not_infused_in_the_other(
    application: AdverseEventsApplication,
) -> None:
    rows = {record_key(OTHER, "S-009"): INFUSED}

    class OnlyOther(Infusions):
        async def infused(self, key: str) -> Infused | None:
            return rows.get(key)

    view: Any = OnlyOther()
    serving = Serving(VERIFIER, memory_outbox(application, PUBLICATION), lambda: NOW,
                      studies=(DEFAULT_STUDY_ID, OTHER))  # fmt: skip
    async with asgi_client(create_app(application, view, serving), "adverse_events") as client:
        refused = await report(client, DEFAULT_STUDY_ID, 1, "S-009")
        accepted = await report(client, OTHER, 1, "S-009")
    assert (refused.status_code, refused.json()["code"]) == (409, "subject_not_infused")
    assert accepted.status_code == 201, accepted.text


def test_a_cytopenia_lasting_to_day_25_is_beyond_one_study_s_dlt_window_only() -> None:
    # "beyond day 28" reads the study's DLT window: NCT05030779's ends on day 28,
    # SYN-CART-2's on day 21 (the criterion's name is the first study's)
    onset = INFUSED.infused_at + timedelta(days=10)
    course = Course(onset, 10, (INFUSED.infused_at + timedelta(days=25)).date(), NOW)
    judged = {
        study: supports(
            DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28,
            "CTCAE",
            "Platelet count decreased",
            4,
            True,
            course,
            study_rules(study).calendar,
            study_rules(study).dlt,
        )
        for study in (DEFAULT_STUDY_ID, OTHER)
    }
    assert judged == {DEFAULT_STUDY_ID: False, OTHER: True}
