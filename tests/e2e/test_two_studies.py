"""End to end, two studies side by side (TL_STUDIES=NCT05030779,SYN-CART-2): the
enrollment and infusion processes hold each study to its own definition, the infusion
service's view learns a SYN-CART-2 subject through real Kafka under its study's key, and
the same subject id in both studies stays two subjects.

Identity does not issue a token for another study yet: the test re-issues the logged-in
investigator's token for SYN-CART-2 with the stack's token key (the same user, session
and roles; claim ``study``), as identity will."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.kernel.keys import load_private_key, load_public_key
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import TokenIssuer, TokenVerifier
from tests.e2e.flows import PASSWORD, enrol, once_seen, today
from tests.e2e.stack import Stack, running_stack
from tests.support import eligible_observations, observation_json

pytestmark = pytest.mark.integration

SECOND = "SYN-CART-2"


@pytest.fixture
async def studies_stack(
    enrollment_settings_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Stack]:
    env = {**enrollment_settings_env, "TL_STUDIES": f"{DEFAULT_STUDY_ID},{SECOND}"}
    async with running_stack(env, tmp_path) as stack:
        yield stack


def for_study(stack: Stack, session: dict[str, str], study: str) -> dict[str, str]:
    """``session``'s headers with its token re-issued for ``study``."""
    token = session["Authorization"].removeprefix("Bearer ")
    verifier = TokenVerifier(load_public_key(stack.env["TL_TOKEN_PUBLIC_KEY_FILE"]))
    principal = replace(verifier.principal(token), study_id=study)
    issuer = TokenIssuer(load_private_key(stack.env["TL_TOKEN_PRIVATE_KEY_FILE"]))
    again, _ = issuer.access_token(principal, datetime.now(UTC))
    return {**session, "Authorization": f"Bearer {again}"}


async def enrolled_in_second(
    stack: Stack, login: dict[str, str], subject: str, platelets: str, level: int | None
) -> dict[str, Any]:
    """``subject`` through SYN-CART-2's enrollment, screened with ``platelets`` x10^9/L, by
    the user of ``login`` (identity signs for the login; the commands carry its token
    re-issued for SYN-CART-2)."""
    first, session = login, for_study(stack, login, SECOND)
    consent = await stack.signature(
        first, "responsibility", f"enrollment/consent/{subject}", PASSWORD, "lin.wei"
    )
    decision = await stack.signature(
        first, "approval", f"enrollment/eligibility/{subject}", PASSWORD
    )
    screening = {code: observation_json(o) for code, o in eligible_observations().items()}
    screening["platelets"]["value"] = platelets
    prefix = f"/studies/{SECOND}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/subjects", {"subject_id": subject, "site_id": "ZJU-1"}),
        (f"/subjects/{subject}/consent", {"form_version": "ICF v2.1", "signed_on": "2026-11-02",
                                           "obtained_by": "Lin Wei", "signature": consent}),
        (f"/subjects/{subject}/screening",
         {"screened_on": "2026-11-05", "observations": screening}),
        (f"/subjects/{subject}/eligibility", {"signature": decision}),
    ]  # fmt: skip
    if level is not None:
        steps.append((f"/subjects/{subject}/enrollment", {"dose_level": level}))
    answer: dict[str, Any] = {}
    for path, body in steps:
        response = await stack.enrollment.post(prefix + path, json=body, headers=session)
        assert response.status_code in (200, 201), response.text
        answer = response.json()
    return answer


async def test_each_study_s_rules_hold_through_the_running_services(
    studies_stack: Stack,
) -> None:
    stack = studies_stack
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    pharmacist = await stack.member("zhao.pharm", PASSWORD, "cell_therapy_pharmacist")
    second, second_pharmacist = (
        for_study(stack, session, SECOND),
        for_study(stack, pharmacist, SECOND),
    )
    prefix = f"/studies/{SECOND}"

    # the same subject id, platelets 40: eligible in NCT05030779 (>= 30), not in SYN-CART-2
    await enrol(stack, session, "S-001", level=None)
    failed = await enrolled_in_second(stack, session, "S-001", "40", level=None)
    assert failed["status"] == "screen_failed"
    assert failed["eligibility"]["failed_criteria"] == ["platelets"]
    first = await stack.enrollment.get("/subjects/S-001", headers=session)
    assert first.json()["status"] == "eligible"
    # SYN-CART-2 has three dose levels; its S-002 is enrolled at its level 1
    await enrolled_in_second(stack, session, "S-002", "180", level=None)
    four = await stack.enrollment.post(
        f"{prefix}/subjects/S-002/enrollment", json={"dose_level": 4}, headers=second
    )
    assert four.json()["code"] == "invalid_dose_level"
    one = await stack.enrollment.post(
        f"{prefix}/subjects/S-002/enrollment", json={"dose_level": 1}, headers=second
    )
    assert one.status_code == 200, one.text
    # a token of one study is refused on the other's route
    crossed = await stack.enrollment.get(f"{prefix}/subjects/S-002", headers=session)
    assert (crossed.status_code, crossed.json()["code"]) == (403, "study_not_granted")

    # the infusion view learns SYN-CART-2's S-002 through Kafka; the first study's S-002
    # (never registered) stays unknown
    body = {"performed_on": today(-10), "volume_ml": "180"}
    await once_seen(
        lambda: stack.infusion.post(f"{prefix}/subjects/S-002/leukapheresis", json=body,
                                    headers=second),
        201, "the infusion view sees SYN-CART-2's S-002 enrolled",
    )  # fmt: skip
    unknown = await stack.infusion.post("/subjects/S-002/leukapheresis", json=body, headers=session)
    assert unknown.json()["code"] == "not_enrolled"
    release = {"lot_id": "LOT-2", "product": "CD19", "car_positive_percent": "41.5",
               "viability_percent": "92", "sterility_passed": True, "release_tests_passed": True,
               "released_on": today(-6)}  # fmt: skip
    released = await stack.infusion.post(
        f"{prefix}/subjects/S-002/products", json=release, headers=second_pharmacist
    )
    assert released.status_code == 200, released.text
    regimen = {"agents": [{"agent": "fludarabine", "dose_mg_per_m2": "25", "days": 3}],
               "started_on": today(-7), "completed_on": today(-5)}  # fmt: skip
    depleted = await stack.infusion.post(
        f"{prefix}/subjects/S-002/lymphodepletion", json=regimen, headers=second
    )
    assert depleted.status_code == 200, depleted.text

    async def infuse(cells: str) -> Any:
        started = datetime.now(UTC) - timedelta(hours=1)
        signature = await stack.signature(
            session, "responsibility", "infusion/infusion/S-002", PASSWORD
        )
        infusion = {
            "weight_kg": "64",
            "lots": [{"lot_id": "LOT-2", "viable_car_positive_cells": cells}],
            "started_at": started.isoformat(),
            "ended_at": (started + timedelta(minutes=15)).isoformat(),
            "signature": signature,
        }
        return await stack.infusion.post(
            f"{prefix}/subjects/S-002/infusion", json=infusion, headers=second
        )

    # 1.0 x10^6/kg: NCT05030779's level 1, twice SYN-CART-2's
    assert (await infuse("64000000")).json()["code"] == "dose_out_of_tolerance"
    infused = await infuse("32000000")  # 0.5 x10^6/kg
    assert infused.status_code == 200, infused.text
    assert infused.json()["infusion"]["weight_kg"] == "64"
