"""Fixtures of the assessments tests: its HTTP app (``api``, with the local views replaced
by fixed answers; tests/conftest.py serves it as ``client`` over ``application``; the real
views run in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from services.assessments.api import create_app
from services.assessments.application import AssessmentsApplication
from services.assessments.domain import VitalStatus
from services.assessments.publication import PUBLICATION
from services.assessments.rules import SledaiItem
from shared.clinical import Infused
from shared.web.service_app import Serving
from tests.support import NOW, VERIFIER, memory_outbox

INFUSED_AT = NOW - timedelta(days=60)


def visit(days: int, *present: str, **changes: Any) -> dict[str, Any]:
    """A SLEDAI-2K visit's JSON body ``days`` after the infusion, with the items
    ``present`` (every other absent), on a low PGA and prednisone dose."""
    body = {
        "label": f"day {days}",
        "assessed_at": (INFUSED_AT + timedelta(days=days)).isoformat(),
        "items": {item.value: item.value in present for item in SledaiItem},
        "pga": "0.2",
        "prednisone_mg_per_day": "5",
        "maintenance_immunosuppression_only": True,
    }
    return {**body, **changes}


class Views:
    """Both views' answers: S-001 infused 60 days ago and alive; nobody else known."""

    async def infused(self, subject_id: str) -> Infused | None:
        return Infused(INFUSED_AT, 1) if subject_id == "S-001" else None

    async def vital_status(self, subject_id: str) -> VitalStatus:
        return VitalStatus()


@pytest.fixture
def api(application: AssessmentsApplication) -> FastAPI:
    views: Any = Views()
    outbox = memory_outbox(application, PUBLICATION)
    return create_app(application, views, views, Serving(VERIFIER, outbox, lambda: NOW))
