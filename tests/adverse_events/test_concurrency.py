"""Parallel identical commands on one record, through the HTTP API, on the real
PostgreSQL: one succeeds, the others are coded 409s, the store holds one event.

The infusion view is replaced by fixed answers (``client`` in conftest.py; the real view
runs in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.domain import AdverseEvent, SafetyReview
from shared.kernel.provenance import Meaning
from tests.support import NOW, bearer, parallel_conflicts, signature_json, stored_count

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


async def test_parallel_gradings_of_one_adverse_event_grade_it_once(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    onset = (NOW - timedelta(days=39)).isoformat()
    report = {"term": "Cytokine release syndrome", "verbatim": "fever", "onset_at": onset}
    reported = await client.post("/subjects/S-001/adverse-events", json=report, headers=bearer())
    record_id, version = reported.json()["id"], reported.json()["version"]
    purpose = f"adverse_events/grade/{record_id}@{version}"
    crs = {"temperature_c": "38.6", "antipyretics_or_immunosuppression_given": False,
           "hypotension": "none", "oxygen": "none"}  # fmt: skip
    body = {"crs": crs, "signature": signature_json(Meaning.AUTHORSHIP, purpose)}

    conflicts = await parallel_conflicts(
        lambda: client.post(f"/adverse-events/{record_id}/grade", json=body, headers=bearer()), 200
    )

    assert conflicts == {"already_graded"}
    assert stored_count(application, AdverseEvent.AdverseEventGraded) == 1


async def test_parallel_approvals_of_one_safety_review_approve_it_once(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    signature = signature_json(Meaning.APPROVAL, "adverse_events/safety-review/1")
    body = {"approved_level": 2, "signature": signature}

    conflicts = await parallel_conflicts(
        lambda: client.post("/safety-reviews", json=body, headers=bearer()), 201
    )

    assert conflicts == {"safety_review_already_approved"}
    assert stored_count(application, SafetyReview.SafetyReviewApproved) == 1
