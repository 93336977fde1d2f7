"""Parallel identical commands on one treatment, through the HTTP API, on the real
PostgreSQL: one succeeds, the others are coded 409s, the store holds one event.

The enrollment view is replaced by fixed answers (``client`` in conftest.py; the real
view runs in tests/e2e)."""

from __future__ import annotations

import httpx
import pytest

from services.infusion.application import InfusionApplication
from services.infusion.domain import Treatment
from shared.kernel.provenance import Role
from tests.support import bearer, parallel_conflicts, principal, stored_count

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


async def leukapheresis(client: httpx.AsyncClient) -> httpx.Response:
    body = {"performed_on": "2026-11-10", "volume_ml": "180"}
    return await client.post("/subjects/S-001/leukapheresis", json=body, headers=bearer())


async def test_parallel_leukapheresis_of_one_subject_begins_one_treatment(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    conflicts = await parallel_conflicts(lambda: leukapheresis(client), 201)

    assert conflicts == {"already_done"}
    assert stored_count(application, Treatment.LeukapheresisPerformed) == 1


async def test_parallel_releases_of_one_lot_release_it_once(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    await leukapheresis(client)
    pharmacist = bearer(principal(Role.CELL_THERAPY_PHARMACIST, user_id="u-ph-1"))
    body = {"lot_id": "LOT-001", "product": "CD19/BCMA", "car_positive_percent": "41.5",
            "viability_percent": "92", "sterility_passed": True, "release_tests_passed": True,
            "released_on": "2026-11-17"}  # fmt: skip

    conflicts = await parallel_conflicts(
        lambda: client.post("/subjects/S-001/products", json=body, headers=pharmacist), 200
    )

    assert conflicts == {"already_done"}
    assert stored_count(application, Treatment.ProductReleased) == 1
