"""Parallel identical commands on one record, through the HTTP API, on the real
PostgreSQL: one succeeds, the others are coded 409s, the store holds one event.

The infusion view is replaced by fixed answers (the real view runs in tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.adverse_events.api import create_app
from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.domain import AdverseEvent, SafetyReview
from services.adverse_events.publication import PUBLICATION
from shared.adapters.eventstore import postgres_env
from shared.clinical import Infused
from shared.kernel.provenance import Meaning
from shared.kernel.settings import ServiceSettings
from tests.support import (
    NOW,
    SIGNER,
    VERIFIER,
    asgi_client,
    at_once,
    bearer,
    isolated,
    memory_outbox,
    one_success_and_conflicts,
    signature_json,
    stored_count,
)

pytestmark = pytest.mark.integration
PARALLEL = 10
# a full first cohort whose DLT windows have closed without a DLT: level 2 may open
COHORT = {f"S-00{n}": Infused(NOW - timedelta(days=40 + n), 1) for n in (1, 2, 3)}


class Infusions:
    async def infused(self, subject_id: str) -> Infused | None:
        return COHORT.get(subject_id)

    async def all_infused(self) -> dict[str, Infused]:
        return dict(COHORT)


@pytest.fixture
async def settings(enrollment_settings_env: dict[str, str]) -> AsyncIterator[ServiceSettings]:
    async with isolated("adverse_events", enrollment_settings_env) as adverse_events_settings:
        yield adverse_events_settings


@pytest.fixture
def application(settings: ServiceSettings) -> Iterator[AdverseEventsApplication]:
    app = AdverseEventsApplication(signer=SIGNER, env=postgres_env(settings.database))
    yield app
    app.close()


@pytest.fixture
async def client(application: AdverseEventsApplication) -> AsyncIterator[httpx.AsyncClient]:
    view: Any = Infusions()
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, view, VERIFIER, outbox, clock=lambda: NOW)
    async with asgi_client(app, "ae") as client:
        yield client


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

    answers = await at_once(
        PARALLEL,
        lambda: client.post(f"/adverse-events/{record_id}/grade", json=body, headers=bearer()),
    )

    assert set(one_success_and_conflicts(answers, 200)) == {"already_graded"}
    assert stored_count(application, AdverseEvent.AdverseEventGraded) == 1


async def test_parallel_approvals_of_one_safety_review_approve_it_once(
    client: httpx.AsyncClient, application: AdverseEventsApplication
) -> None:
    signature = signature_json(Meaning.APPROVAL, "adverse_events/safety-review/1")
    body = {"approved_level": 2, "signature": signature}

    answers = await at_once(
        PARALLEL, lambda: client.post("/safety-reviews", json=body, headers=bearer())
    )

    assert set(one_success_and_conflicts(answers, 201)) == {"safety_review_already_approved"}
    assert stored_count(application, SafetyReview.SafetyReviewApproved) == 1
