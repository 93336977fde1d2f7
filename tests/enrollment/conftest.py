"""Fixtures of the enrollment tests: the HTTP API over a store (in memory unless a module
overrides ``application``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from tests.support import NOW, SIGNER, VERIFIER, asgi_client, memory_outbox


@pytest.fixture
def application() -> EnrollmentApplication:
    return EnrollmentApplication(signer=SIGNER, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
async def client(application: EnrollmentApplication) -> AsyncIterator[httpx.AsyncClient]:
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, VERIFIER, outbox, clock=lambda: NOW)
    async with asgi_client(app, "enrollment") as client:
        yield client
