"""Fixtures of the adverse-events tests: the HTTP API over a store (in memory unless a
module overrides ``application``), with the infusion view replaced by fixed answers (the
real view runs in tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.adverse_events.api import create_app
from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.publication import PUBLICATION
from shared.clinical import Infused
from tests.support import NOW, SIGNER, VERIFIER, asgi_client, memory_outbox

# a full first cohort whose DLT windows have closed without a DLT: level 2 may open
COHORT = {f"S-00{n}": Infused(NOW - timedelta(days=40 + n), 1) for n in (1, 2, 3)}


class Infusions:
    async def infused(self, subject_id: str) -> Infused | None:
        return COHORT.get(subject_id)

    async def all_infused(self) -> dict[str, Infused]:
        return dict(COHORT)


@pytest.fixture
def service() -> str:
    return "adverse_events"


@pytest.fixture
def application() -> AdverseEventsApplication:
    return AdverseEventsApplication(signer=SIGNER, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
async def client(application: AdverseEventsApplication) -> AsyncIterator[httpx.AsyncClient]:
    view: Any = Infusions()
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, view, VERIFIER, outbox, clock=lambda: NOW)
    async with asgi_client(app, "ae") as client:
        yield client
