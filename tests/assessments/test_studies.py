"""Two studies served by one assessments service (issue #21): a command acts in the
study of its route (and token), on that study's record of the subject (named in its
namespace: the same subject id in two studies is two records), with what the views know
of the subject in that study (rows keyed ``record_key(study, subject)``), counting study
days by that study's calendar; a token of one study is refused on the other's route."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import httpx
import pytest
from fastapi import FastAPI

from services.assessments.api import create_app
from services.assessments.application import AssessmentsApplication, study_rules
from services.assessments.domain import (
    StudyRules,
    SubjectAssessments,
    VitalStatus,
    assessments_record_id,
)
from services.assessments.publication import PUBLICATION
from services.assessments.rules import Activity
from shared.clinical import DayConvention, Infused, Study
from shared.kernel.provenance import Attribution
from shared.study import DEFAULT_STUDY_ID, record_key
from shared.web.service_app import Serving
from tests.assessments.conftest import INFUSED_AT, visit
from tests.support import NOW, VERIFIER, bearer, command, memory_outbox, principal

OTHER = "SYN-CART-2"
INFUSED = Infused(INFUSED_AT, 1)
# S-001 infused in both studies; S-002 in SYN-CART-2 only; S-001 of SYN-CART-2 withdrawn
# 10 days ago (the first study's S-001 is not)
WITHDRAWN = NOW - timedelta(days=10)
INFUSIONS = {record_key(DEFAULT_STUDY_ID, "S-001"): INFUSED, record_key(OTHER, "S-001"): INFUSED,
             record_key(OTHER, "S-002"): INFUSED}  # fmt: skip
VITAL = {record_key(OTHER, "S-001"): VitalStatus(withdrawn_at=WITHDRAWN)}


class Views:
    """Both views' answers, keyed by record_key(study, subject)."""

    async def infused(self, key: str) -> Infused | None:
        return INFUSIONS.get(key)

    async def vital_status(self, key: str) -> VitalStatus:
        return VITAL.get(key, VitalStatus())


@pytest.fixture
def api(application: AssessmentsApplication) -> FastAPI:
    views: Any = Views()
    outbox = memory_outbox(application, PUBLICATION)
    serving = Serving(VERIFIER, outbox, lambda: NOW, studies=(DEFAULT_STUDY_ID, OTHER))
    return create_app(application, views, views, serving)


def prefix(study: str) -> str:
    return "" if study == DEFAULT_STUDY_ID else f"/studies/{study}"


def headers(study: str) -> dict[str, str]:
    """An investigator's token for ``study`` (the first study's names none)."""
    return bearer(replace(principal(), study_id=None if study == DEFAULT_STUDY_ID else study))


async def assess(
    client: httpx.AsyncClient, study: str, days: int, subject: str = "S-001"
) -> httpx.Response:
    return await client.post(
        f"{prefix(study)}/subjects/{subject}/disease-activity",
        json=visit(days, "arthritis"),
        headers=headers(study),
    )


@pytest.mark.on_postgres
async def test_the_same_subject_id_in_two_studies_is_two_records(
    client: httpx.AsyncClient, application: AssessmentsApplication
) -> None:
    first = await assess(client, DEFAULT_STUDY_ID, 1)
    other = await assess(client, OTHER, 2)
    assert first.status_code == other.status_code == 201, (first.text, other.text)

    # the first study's record keeps the id its subject's record always had
    assert first.json()["record_id"] == str(
        uuid5(uuid5(NAMESPACE_URL, f"urn:trial-ledger:{DEFAULT_STUDY_ID}:assessments"), "S-001")
    )
    assert other.json()["record_id"] == str(
        uuid5(uuid5(NAMESPACE_URL, f"urn:trial-ledger:{OTHER}:assessments"), "S-001")
    )
    read = {
        study: (
            await client.get(f"{prefix(study)}/subjects/S-001/assessments", headers=headers(study))
        ).json()
        for study in (DEFAULT_STUDY_ID, OTHER)
    }
    assert [v["study_day"] for v in read[DEFAULT_STUDY_ID]["visits"]] == [1]
    assert [v["study_day"] for v in read[OTHER]["visits"]] == [2]
    assert read[OTHER]["study_day_convention"] == "infusion_day_0"
    assert application.get("S-001", OTHER).study_id == OTHER
    assert application.get("S-001").study_id == DEFAULT_STUDY_ID


async def test_what_the_views_know_is_the_caller_s_study_s(client: httpx.AsyncClient) -> None:
    # S-002 is infused in SYN-CART-2 only; SYN-CART-2's S-001 was withdrawn, not the first's
    unknown = await assess(client, DEFAULT_STUDY_ID, 1, "S-002")
    known = await assess(client, OTHER, 1, "S-002")
    after_withdrawal = await assess(client, OTHER, 55)
    first = await assess(client, DEFAULT_STUDY_ID, 55)

    assert (unknown.status_code, unknown.json()["code"]) == (409, "subject_not_infused")
    assert known.status_code == 201, known.text
    assert (after_withdrawal.status_code, after_withdrawal.json()["code"]) == (
        409,
        "subject_inactive",
    )
    assert first.status_code == 201, first.text


@pytest.mark.parametrize(("token", "route"), [(OTHER, DEFAULT_STUDY_ID), (DEFAULT_STUDY_ID, OTHER)])
async def test_a_token_of_one_study_is_refused_on_the_other_s_route(
    client: httpx.AsyncClient, application: AssessmentsApplication, token: str, route: str
) -> None:
    refused = await client.post(
        f"{prefix(route)}/subjects/S-001/disease-activity", json=visit(1), headers=headers(token)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "study_not_granted")
    assert not [e for _, e in application.stored_events()
                if type(e) is SubjectAssessments.FollowUpStarted]  # fmt: skip


def in_study(study: str) -> Attribution:
    attribution = command()
    return replace(attribution, provenance=replace(attribution.provenance, study_id=study))


def test_a_record_counts_study_days_by_its_study_s_calendar() -> None:
    # a study counting the infusion's date as day 1 (CDISC): its visits are recorded so,
    # and kept as recorded
    cdisc = StudyRules(
        "CDISC-STUDY",
        Study("CDISC-STUDY", DayConvention.INFUSION_DAY_1),
        study_rules(OTHER).records,
    )
    on_the_day = Activity(frozenset(), Decimal("0.2"), Decimal("5"), True, None, None)
    for rules, expected in ((cdisc, 1), (study_rules(OTHER), 0)):
        r = SubjectAssessments.start("S-001", INFUSED, in_study(rules.study_id), rules)
        r.assess_activity("day 0", on_the_day, INFUSED_AT, VitalStatus(), in_study(rules.study_id),
                          rules)  # fmt: skip
        [stored] = r.visits.values()
        assert stored.study_day == expected
        assert r.pending_events[-1].study_day_convention == rules.calendar.convention.value  # type: ignore[attr-defined]
        assert r.id == assessments_record_id("S-001", rules.records)
        assert r.study_id == rules.study_id
