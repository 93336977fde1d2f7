"""Parallel commands on one subject's assessments, through the HTTP API, on the real
PostgreSQL: never a 5xx; an identical command is recorded once, the others are coded 409s.

The local views are replaced by fixed answers (``client`` in conftest.py; the real views
run in tests/e2e)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.assessments.application import AssessmentsApplication
from services.assessments.domain import SubjectAssessments
from shared.kernel.provenance import Meaning
from tests.assessments.conftest import visit
from tests.support import (
    PARALLEL,
    at_once,
    bearer,
    parallel_conflicts,
    signature_json,
    stored_count,
)

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


async def assess(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/subjects/S-001/disease-activity", json=body, headers=bearer())


async def test_parallel_remissions_at_one_visit_record_one(
    client: httpx.AsyncClient, application: AssessmentsApplication
) -> None:
    await assess(client, visit(-1, "arthritis", "rash"))
    record = (await assess(client, visit(29))).json()
    purpose = f"assessments/remission/S-001@{record['version']}"
    body = {"visit_event_id": record["visits"][-1]["event_id"], "response": "complete",
            "signature": signature_json(Meaning.APPROVAL, purpose)}  # fmt: skip

    conflicts = await parallel_conflicts(
        lambda: client.post("/subjects/S-001/remission", json=body, headers=bearer()), 201
    )

    assert conflicts == {"already_assessed"}
    assert stored_count(application, SubjectAssessments.RemissionAssessed) == 1


async def test_parallel_first_assessments_open_the_record_once(
    client: httpx.AsyncClient, application: AssessmentsApplication
) -> None:
    answers = await at_once(PARALLEL, lambda: assess(client, visit(-1, "arthritis")))

    assert all(r.status_code in (201, 409) for r in answers), [r.text for r in answers]
    refused = {r.json()["code"] for r in answers if r.status_code == 409}
    assert refused <= {"concurrent_change"}
    assert stored_count(application, SubjectAssessments.FollowUpStarted) == 1
    recorded_visits = stored_count(application, SubjectAssessments.DiseaseActivityAssessed)
    assert recorded_visits == [r.status_code for r in answers].count(201) >= 1
