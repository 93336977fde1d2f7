"""Two studies side by side in one infusion service (issue #21): a subject of SYN-CART-2
is dosed by SYN-CART-2's dose levels, tolerance (5 %) and lymphodepletion window (3-10
days), the same subject id in both studies is two treatments counted in two cohorts, and
a token of one study is refused on the other's routes. The application keeps its events
in the real PostgreSQL; the enrollment view answers by the subject's record key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.infusion import errors
from services.infusion.api import create_app
from services.infusion.application import InfusionApplication
from services.infusion.domain import (
    INFUSION_SIGNATURE,
    Enrollment,
    Leukapheresis,
    Treatment,
    treatment_id,
    treatment_namespace,
)
from services.infusion.publication import PUBLICATION
from services.infusion.rules import InfusionRules
from shared.clinical import CohortOpening, first_cohort
from shared.contracts.infusion import CarTInfusedV1
from shared.kernel.provenance import Attribution, Role
from shared.study import DEFAULT_STUDY_ID, study_definition
from shared.web.service_app import Serving
from tests.infusion.test_api import REGIMEN, RELEASE
from tests.infusion.test_domain import infusion, regimen, release
from tests.support import (
    NOW,
    VERIFIER,
    as_published,
    asgi_client,
    bearer,
    command,
    memory_outbox,
    principal,
    signature_json,
)

pytestmark = pytest.mark.on_postgres

SECOND = "SYN-CART-2"
FIRST_INVESTIGATOR = principal()
SECOND_INVESTIGATOR = replace(principal(), study_id=SECOND)
LATE_REGIMEN = {**REGIMEN, "started_on": "2026-11-16", "completed_on": "2026-11-18"}  # 2 days


class Enrollments:
    """The enrollment view's answers, by record key: S-001 and S-002 enrolled at level 1
    in both studies."""

    async def enrollment(self, key: str) -> Enrollment:
        enrolled = {"S-001", "S-002", f"{SECOND}/S-001", f"{SECOND}/S-002"}
        return Enrollment("enrolled", 1) if key in enrolled else Enrollment("unknown", None)


@pytest.fixture
def api(application: InfusionApplication) -> FastAPI:
    view: Any = Enrollments()
    outbox = memory_outbox(application, PUBLICATION)
    serving = Serving(VERIFIER, outbox, lambda: NOW, studies=(DEFAULT_STUDY_ID, SECOND))
    return create_app(application, view, serving)


@pytest.fixture
async def client(api: FastAPI) -> Any:
    async with asgi_client(api, "infusion") as client:
        yield client


async def post(
    client: httpx.AsyncClient, study: str | None, path: str, body: dict[str, Any]
) -> httpx.Response:
    who = SECOND_INVESTIGATOR if study == SECOND else FIRST_INVESTIGATOR
    prefix = "" if study is None else f"/studies/{study}"
    return await client.post(f"{prefix}{path}", json=body, headers=bearer(who))


async def prepared(
    client: httpx.AsyncClient, study: str | None, subject: str, regimen: dict[str, Any] = REGIMEN
) -> None:
    pharmacist = principal(Role.CELL_THERAPY_PHARMACIST, user_id="u-ph-1")
    leukapheresis = {"performed_on": "2026-11-10", "volume_ml": "180"}
    done = await post(client, study, f"/subjects/{subject}/leukapheresis", leukapheresis)
    assert done.status_code == 201, done.text
    who = replace(pharmacist, study_id=SECOND) if study == SECOND else pharmacist
    prefix = "" if study is None else f"/studies/{study}"
    released = await client.post(
        f"{prefix}/subjects/{subject}/products", json=RELEASE, headers=bearer(who)
    )
    assert released.status_code == 200, released.text
    depleted = await post(client, study, f"/subjects/{subject}/lymphodepletion", regimen)
    assert depleted.status_code == 200, depleted.text


def infusion_body(study: str | None, subject: str, cells: str, kg: str = "64") -> dict[str, Any]:
    started = NOW - timedelta(hours=1)
    who = SECOND_INVESTIGATOR if study == SECOND else FIRST_INVESTIGATOR
    return {
        "weight_kg": kg,
        "lots": [{"lot_id": "LOT-001", "viable_car_positive_cells": cells}],
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=15)).isoformat(),
        "signature": signature_json(INFUSION_SIGNATURE, f"infusion/infusion/{subject}", who),
    }


async def test_the_dose_is_held_to_the_study_s_level_and_tolerance(
    client: httpx.AsyncClient, application: InfusionApplication
) -> None:
    await prepared(client, None, "S-001")
    await prepared(client, SECOND, "S-001")

    # 1.0 x10^6/kg is level 1 of the first study, twice level 1 of SYN-CART-2 (0.5)
    doubled = await post(
        client, SECOND, "/subjects/S-001/infusion", infusion_body(SECOND, "S-001", "64000000")
    )
    assert (doubled.status_code, doubled.json()["code"]) == (422, "dose_out_of_tolerance")
    # 6 % over 0.5: within the first study's 10 %, outside SYN-CART-2's 5 %
    over = await post(
        client, SECOND, "/subjects/S-001/infusion", infusion_body(SECOND, "S-001", "33920000")
    )
    assert over.json()["code"] == "dose_out_of_tolerance"
    assert over.json()["details"]["tolerance"] == "0.05"
    edge = await post(
        client, SECOND, "/subjects/S-001/infusion", infusion_body(SECOND, "S-001", "33600000")
    )
    assert edge.status_code == 200, edge.text  # 0.525: 5 % over, the edge is in
    first = await post(
        client, None, "/subjects/S-001/infusion", infusion_body(None, "S-001", "70400000")
    )
    assert first.status_code == 200, first.text  # 1.1: the first study's 10 % edge

    infused = {
        e.kafka_key(DEFAULT_STUDY_ID): e.data
        for e in as_published(application, PUBLICATION)
        if e.type == CarTInfusedV1.event_type
    }
    assert {k: (d["cells_per_kg_millions"], d["rule_version"]) for k, d in infused.items()} == {
        b"S-001": ("1.100", "NCT05030779/def-1/infusion/2;tolerance=0.10;window=2-14d"),
        b"SYN-CART-2/S-001": ("0.525", "SYN-CART-2/def-1/infusion/2;tolerance=0.05;window=3-10d"),
    }
    # two treatments, and each study's cohort counted its own infusion
    one = application.get_treatment("S-001")
    two = application.get_treatment("S-001", SECOND)
    assert one.id == treatment_id("S-001", treatment_namespace(study_definition())) != two.id
    assert two.id == treatment_id("S-001", treatment_namespace(study_definition(SECOND)))
    for study in (DEFAULT_STUDY_ID, SECOND):
        assert application.dosed_since(first_cohort(study_definition(study)), study) == 1


async def test_the_lymphodepletion_window_is_the_study_s(client: httpx.AsyncClient) -> None:
    await prepared(client, None, "S-002", LATE_REGIMEN)
    await prepared(client, SECOND, "S-002", LATE_REGIMEN)

    second = await post(
        client, SECOND, "/subjects/S-002/infusion", infusion_body(SECOND, "S-002", "32000000")
    )
    assert second.json()["code"] == "outside_lymphodepletion_window"
    assert second.json()["details"]["window"] == [3, 10]
    first = await post(
        client, None, "/subjects/S-002/infusion", infusion_body(None, "S-002", "64000000")
    )
    assert first.status_code == 200, first.text  # 2 days: within the first study's 2-14


async def test_a_treatment_of_one_study_is_not_the_other_s(client: httpx.AsyncClient) -> None:
    await prepared(client, None, "S-001")
    read = await client.get(
        f"/studies/{SECOND}/subjects/S-001", headers=bearer(SECOND_INVESTIGATOR)
    )
    assert (read.status_code, read.json()["code"]) == (409, "leukapheresis_required")
    assert (await client.get("/subjects/S-001", headers=bearer())).status_code == 200


@pytest.mark.parametrize(
    ("study", "who"),
    [(SECOND, FIRST_INVESTIGATOR), (None, SECOND_INVESTIGATOR)],
    ids=["first-token-on-second", "second-token-on-first"],
)
async def test_a_token_of_one_study_is_refused_on_the_other_s_routes(
    client: httpx.AsyncClient, study: str | None, who: Any
) -> None:
    prefix = "" if study is None else f"/studies/{study}"
    body = {"performed_on": "2026-11-10", "volume_ml": "180"}
    refused = await client.post(
        f"{prefix}/subjects/S-001/leukapheresis", json=body, headers=bearer(who)
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "study_not_granted")


def in_second(attribution: Attribution) -> Attribution:
    return replace(attribution, provenance=replace(attribution.provenance, study_id=SECOND))


def test_a_level_the_study_does_not_define_is_never_infused() -> None:
    """SYN-CART-2 has three dose levels: a subject at level 4 (had the view said so) is
    refused, by the rules the domain is given (no I/O)."""
    rules = InfusionRules.of(study_definition(SECOND))
    attribution = in_second(command(NOW))
    namespace = treatment_namespace(study_definition(SECOND))
    enrolled = Enrollment("enrolled", 4)
    apheresis = Leukapheresis(date(2026, 11, 1), Decimal(180))
    treatment = Treatment.begin("S-004", enrolled, apheresis, attribution, namespace)
    assert treatment.id == treatment_id("S-004", namespace) and treatment.study_id == SECOND
    treatment.release(enrolled, release(), attribution)
    treatment.deplete(enrolled, regimen(), attribution)
    opened_4 = CohortOpening(4, 3, datetime(2026, 1, 1, tzinfo=UTC), 1)
    dose = infusion(cells="128000000", weight="64")  # 2.0 x10^6/kg: SYN-CART-2's level 3
    with pytest.raises(errors.InvalidMeasurement, match="not one of the study's levels 1, 2, 3"):
        treatment.infuse(enrolled, dose, rules, attribution, opened_4, 0)
    # nor by another study's rules
    with pytest.raises(ValueError, match="NCT05030779's rules for a record of SYN-CART-2"):
        treatment.infuse(enrolled, dose, InfusionRules(), attribution, opened_4, 0)
