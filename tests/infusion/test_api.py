"""The infusion HTTP API through httpx's ASGI transport, over the in-memory store, with
the enrollment view replaced by fixed answers (``client`` in conftest.py; the real view
runs in tests/e2e)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.infusion.application import InfusionApplication
from services.infusion.domain import INFUSION_SIGNATURE, Treatment
from shared.kernel.principals import Principal
from shared.kernel.provenance import Role
from tests.support import NOW, bearer, principal, signature_json, stored_count

PHARMACIST = principal(Role.CELL_THERAPY_PHARMACIST, user_id="u-ph-1")
RELEASE = {"lot_id": "LOT-001", "product": "CD19/BCMA", "car_positive_percent": "41.5",
           "viability_percent": "92", "sterility_passed": True, "release_tests_passed": True,
           "released_on": "2026-11-14"}  # fmt: skip
REGIMEN = {"agents": [{"agent": "fludarabine", "dose_mg_per_m2": "25", "days": 3},
                      {"agent": "cyclophosphamide", "dose_mg_per_m2": "250", "days": 3}],
           "started_on": "2026-11-15", "completed_on": "2026-11-17"}  # fmt: skip


def infusion_body(cells: str = "64000000") -> dict[str, Any]:
    started = NOW - timedelta(hours=1)
    return {
        "weight_kg": "64",
        "lots": [{"lot_id": "LOT-001", "viable_car_positive_cells": cells}],
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=15)).isoformat(),
        "signature": signature_json(INFUSION_SIGNATURE, "infusion/infusion/S-001"),
    }


async def post(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], who: Principal | None
) -> httpx.Response:
    # a token made for each request: one made at import expires in a long run
    return await client.post(f"/subjects/S-001{path}", json=body, headers=bearer(who))


async def through_lymphodepletion(client: httpx.AsyncClient) -> None:
    leukapheresis = {"performed_on": "2026-11-10", "volume_ml": "180"}
    assert (await post(client, "/leukapheresis", leukapheresis, None)).status_code == 201
    assert (await post(client, "/products", RELEASE, PHARMACIST)).status_code == 200
    depleted = await post(client, "/lymphodepletion", REGIMEN, None)
    assert depleted.status_code == 200, depleted.text


async def test_walks_a_treatment_from_leukapheresis_to_a_signed_infusion(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    await through_lymphodepletion(client)

    infused = await post(client, "/infusion", infusion_body(), None)

    assert infused.status_code == 200, infused.text
    body = infused.json()
    assert body["released_lots"] == ["LOT-001"]
    assert body["infusion"]["weight_kg"] == "64"
    [signature] = body["signatures"]
    assert (signature["printed_name"], signature["meaning"]) == ("Dr Lin Wei", "responsibility")
    read = await client.get("/subjects/S-001", headers=bearer())
    assert read.status_code == 200 and read.json() == body
    assert stored_count(application, Treatment.CarTInfused) == 1


@pytest.mark.parametrize(
    ("subject", "code"), [("S-404", "not_enrolled"), ("S-002", "subject_withdrawn")]
)
async def test_no_treatment_begins_for_a_subject_the_view_does_not_show_enrolled(
    client: httpx.AsyncClient, application: InfusionApplication, subject: str, code: str
) -> None:
    body = {"performed_on": "2026-11-10", "volume_ml": "180"}
    response = await client.post(f"/subjects/{subject}/leukapheresis", json=body, headers=bearer())
    assert (response.status_code, response.json()["code"]) == (409, code)
    assert list(application.stored_events()) == []


async def test_only_the_pharmacist_releases_a_product(client: httpx.AsyncClient) -> None:
    leukapheresis = {"performed_on": "2026-11-10", "volume_ml": "180"}
    await post(client, "/leukapheresis", leukapheresis, None)
    refused = await post(client, "/products", RELEASE, None)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_not_permitted")


async def test_an_infusion_before_lymphodepletion_is_out_of_sequence(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    leukapheresis = {"performed_on": "2026-11-10", "volume_ml": "180"}
    await post(client, "/leukapheresis", leukapheresis, None)
    await post(client, "/products", RELEASE, PHARMACIST)

    refused = await post(client, "/infusion", infusion_body(), None)

    assert (refused.status_code, refused.json()["code"]) == (409, "lymphodepletion_required")
    assert stored_count(application, Treatment.CarTInfused) == 0


async def test_a_dose_outside_the_assigned_level_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    await through_lymphodepletion(client)

    refused = await post(client, "/infusion", infusion_body(cells="640000000"), None)

    assert (refused.status_code, refused.json()["code"]) == (422, "dose_out_of_tolerance")
    assert stored_count(application, Treatment.CarTInfused) == 0


async def test_a_second_infusion_is_a_coded_conflict(client: httpx.AsyncClient) -> None:
    await through_lymphodepletion(client)
    assert (await post(client, "/infusion", infusion_body(), None)).status_code == 200
    again = await post(client, "/infusion", infusion_body(), None)
    assert (again.status_code, again.json()["code"]) == (409, "already_done")


async def test_an_infusion_not_given_needs_a_reason_and_is_read_back(
    client: httpx.AsyncClient,
) -> None:
    leukapheresis = {"performed_on": "2026-11-10", "volume_ml": "180"}
    await post(client, "/leukapheresis", leukapheresis, None)
    assert (await post(client, "/infusion-not-given", {"reason": ""}, None)).status_code == 422
    declined = await post(client, "/infusion-not-given", {"reason": "progressive disease"}, None)
    assert declined.status_code == 200, declined.text
    assert declined.json()["not_given_reason"] == "progressive disease"


async def test_reading_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/subjects/S-001")).status_code == 401
