"""Fixtures of the assessments tests: the HTTP API over a store (in memory unless a module
overrides ``application``), with the local views replaced by fixed answers (the real
views run in tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.assessments.api import create_app
from services.assessments.application import AssessmentsApplication
from services.assessments.domain import VitalStatus
from services.assessments.publication import PUBLICATION
from shared.clinical import Infused
from tests.support import NOW, SIGNER, VERIFIER, asgi_client, memory_outbox

INFUSED_AT = NOW - timedelta(days=60)


class Views:
    """Both views' answers: S-001 infused 60 days ago and alive; nobody else known."""

    async def infused(self, subject_id: str) -> Infused | None:
        return Infused(INFUSED_AT, 1) if subject_id == "S-001" else None

    async def vital_status(self, subject_id: str) -> VitalStatus:
        return VitalStatus()


@pytest.fixture
def service() -> str:
    return "assessments"


@pytest.fixture
def application() -> AssessmentsApplication:
    return AssessmentsApplication(signer=SIGNER, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
async def client(application: AssessmentsApplication) -> AsyncIterator[httpx.AsyncClient]:
    views: Any = Views()
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, views, views, VERIFIER, outbox, clock=lambda: NOW)
    async with asgi_client(app, "assessments") as client:
        yield client
