"""Parallel identical commands on one treatment, through the HTTP API, on the real
PostgreSQL: one succeeds, the others are coded 409s, the store holds one event.

The enrollment view is replaced by a fixed answer (the real view runs in tests/e2e)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from services.infusion.api import create_app
from services.infusion.application import InfusionApplication
from services.infusion.domain import Enrollment, Treatment
from services.infusion.publication import PUBLICATION
from shared.adapters.eventstore import postgres_env
from shared.kernel.provenance import Role
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
    principal,
    stored_count,
)

pytestmark = pytest.mark.integration
PARALLEL = 10


class Enrolled:
    """The enrollment view's answer: every subject enrolled at level 1."""

    async def enrollment(self, subject_id: str) -> Enrollment:
        return Enrollment("enrolled", 1)


@pytest.fixture
async def settings(enrollment_settings_env: dict[str, str]) -> AsyncIterator[ServiceSettings]:
    async with isolated("infusion", enrollment_settings_env) as infusion_settings:
        yield infusion_settings


@pytest.fixture
def application(settings: ServiceSettings) -> Iterator[InfusionApplication]:
    app = InfusionApplication(signer=SIGNER, env=postgres_env(settings.database))
    yield app
    app.close()


@pytest.fixture
async def client(application: InfusionApplication) -> AsyncIterator[httpx.AsyncClient]:
    view: Any = Enrolled()
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, view, VERIFIER, outbox, clock=lambda: NOW)
    async with asgi_client(app, "infusion") as client:
        yield client


async def leukapheresis(client: httpx.AsyncClient) -> httpx.Response:
    body = {"performed_on": "2026-11-10", "volume_ml": "180"}
    return await client.post("/subjects/S-001/leukapheresis", json=body, headers=bearer())


async def test_parallel_leukapheresis_of_one_subject_begins_one_treatment(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    answers = await at_once(PARALLEL, lambda: leukapheresis(client))

    assert set(one_success_and_conflicts(answers, 201)) == {"already_done"}
    assert stored_count(application, Treatment.LeukapheresisPerformed) == 1


async def test_parallel_releases_of_one_lot_release_it_once(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    await leukapheresis(client)
    pharmacist = bearer(principal(Role.CELL_THERAPY_PHARMACIST, user_id="u-ph-1"))
    body = {"lot_id": "LOT-001", "product": "CD19/BCMA", "car_positive_percent": "41.5",
            "viability_percent": "92", "sterility_passed": True, "release_tests_passed": True,
            "released_on": "2026-11-17"}  # fmt: skip

    answers = await at_once(
        PARALLEL, lambda: client.post("/subjects/S-001/products", json=body, headers=pharmacist)
    )

    assert set(one_success_and_conflicts(answers, 200)) == {"already_done"}
    assert stored_count(application, Treatment.ProductReleased) == 1
