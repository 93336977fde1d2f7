"""Fixtures of the adverse-events tests: its HTTP app (``api``, with the infusion view
replaced by fixed answers; tests/conftest.py serves it as ``client`` over ``application``;
the real view runs in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from services.adverse_events.api import create_app
from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.publication import PUBLICATION
from shared.clinical import Infused
from shared.study import DEFAULT_STUDY_ID
from shared.web.service_app import Serving
from tests.support import NOW, VERIFIER, memory_outbox

# a full first cohort whose DLT windows have closed without a DLT: level 2 may open
COHORT = {f"S-00{n}": Infused(NOW - timedelta(days=40 + n), 1) for n in (1, 2, 3)}


class Infusions:
    async def infused(self, subject_id: str) -> Infused | None:
        return COHORT.get(subject_id)

    async def all_infused(self, study_id: str = DEFAULT_STUDY_ID) -> dict[str, Infused]:
        return dict(COHORT) if study_id == DEFAULT_STUDY_ID else {}


@pytest.fixture
def api(application: AdverseEventsApplication) -> FastAPI:
    view: Any = Infusions()
    outbox = memory_outbox(application, PUBLICATION)
    return create_app(application, view, Serving(VERIFIER, outbox, lambda: NOW))
