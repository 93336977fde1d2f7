"""End to end, two studies side by side (TL_STUDIES=NCT05030779,SYN-CART-2): the
enrollment and infusion processes hold each study to its own definition, the infusion
service's view learns a SYN-CART-2 subject through real Kafka under its study's key, and
the same subject id in both studies stays two subjects. The users hold roles in each
study by grants of that study's administrator, log in for SYN-CART-2 with identity's
``/studies/SYN-CART-2/login`` and sign there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.study import DEFAULT_STUDY_ID
from tests.e2e.flows import PASSWORD, enrol, once_seen, today
from tests.e2e.stack import Stack, running_stack
from tests.e2e.test_audit import cli
from tests.support import eligible_observations, eventually, observation_json

pytestmark = pytest.mark.integration

SECOND = "SYN-CART-2"


@pytest.fixture
async def studies_stack(
    enrollment_settings_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Stack]:
    env = {**enrollment_settings_env, "TL_STUDIES": f"{DEFAULT_STUDY_ID},{SECOND}"}
    async with running_stack(env, tmp_path) as stack:
        yield stack


async def for_study(stack: Stack, user_id: str, role: str, boss: dict[str, str]) -> dict[str, str]:
    """``user_id`` granted ``role`` in SYN-CART-2 by its administrator ``boss``, then
    logged in for that study: the session's headers."""
    grant = {"role": role, "site": "ZJU-1", "reason": "works in the second study too"}
    granted = await stack.identity.post(
        f"/studies/{SECOND}/users/{user_id}/roles", json=grant, headers=boss
    )
    assert granted.status_code == 200, granted.text
    return await study_login(stack, user_id)


async def study_login(stack: Stack, user_id: str) -> dict[str, str]:
    return await stack.study_log_in(SECOND, user_id, PASSWORD)


async def sign(
    stack: Stack, session: dict[str, str], meaning: str, purpose: str, user_id: str | None = None
) -> dict[str, str]:
    """A signing assertion of SYN-CART-2 (identity signs in the token's study)."""
    body = {"meaning": meaning, "purpose": purpose, "password": PASSWORD, "user_id": user_id}
    answer = await stack.identity.post(f"/studies/{SECOND}/signing", json=body, headers=session)
    assert answer.status_code == 200, answer.text
    return {"assertion": answer.json()["assertion"]}


async def enrolled_in_second(
    stack: Stack, session: dict[str, str], subject: str, platelets: str, level: int | None
) -> dict[str, Any]:
    """``subject`` through SYN-CART-2's enrollment, screened with ``platelets`` x10^9/L, by
    the investigator of ``session`` (a SYN-CART-2 login)."""
    consent = await sign(
        stack, session, "responsibility", f"enrollment/consent/{subject}", "lin.wei"
    )
    decision = await sign(stack, session, "approval", f"enrollment/eligibility/{subject}")
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
    await stack.create_user("zhao.pharm", PASSWORD, "cell_therapy_pharmacist")
    boss = await stack.study_admin(SECOND, "syn.boss", PASSWORD)
    second = await for_study(stack, "lin.wei", "investigator", boss)
    second_pharmacist = await for_study(stack, "zhao.pharm", "cell_therapy_pharmacist", boss)
    prefix = f"/studies/{SECOND}"

    # the same subject id, platelets 40: eligible in NCT05030779 (>= 30), not in SYN-CART-2
    await enrol(stack, session, "S-001", level=None)
    failed = await enrolled_in_second(stack, second, "S-001", "40", level=None)
    assert failed["status"] == "screen_failed"
    assert failed["eligibility"]["failed_criteria"] == ["platelets"]
    first = await stack.enrollment.get("/subjects/S-001", headers=session)
    assert first.json()["status"] == "eligible"
    # SYN-CART-2 has three dose levels; its S-002 is enrolled at its level 1
    await enrolled_in_second(stack, second, "S-002", "180", level=None)
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
        signature = await sign(stack, second, "responsibility", "infusion/infusion/S-002")
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

    # the ledgers: each study's records in its own, verified alone
    auditor = await stack.member("kim.aud", PASSWORD, "auditor")
    second_auditor = await for_study(stack, "kim.aud", "auditor", boss)

    async def trail(path: str, headers: dict[str, str], subject: str) -> set[str]:
        answer = await stack.projections.get(path, params={"subject_id": subject}, headers=headers)
        assert answer.status_code == 200, answer.text
        return {row["event_type"] for row in answer.json()}

    async def infusion_in_ledger() -> bool:
        return "CarTInfused.v1" in await trail(f"{prefix}/trail", second_auditor, "S-002")

    await eventually(infusion_in_ledger, what="SYN-CART-2's infusion in its ledger")
    first_s001 = await trail("/trail", auditor, "S-001")
    second_s001 = await trail(f"{prefix}/trail", second_auditor, "S-001")
    assert "EligibilityConfirmed.v1" in first_s001 and "ScreenFailed.v1" not in first_s001
    assert "ScreenFailed.v1" in second_s001 and "EligibilityConfirmed.v1" not in second_s001
    assert await trail("/trail", auditor, "S-002") == set()  # never registered there
    # the first study's investigator's refused read of SYN-CART-2's S-002 is in SYN-CART-2's
    assert "AccessDenied.v1" in await trail(f"{prefix}/trail", second_auditor, "S-002")
    crossed_trail = await stack.projections.get(f"{prefix}/trail", headers=auditor)
    assert (crossed_trail.status_code, crossed_trail.json()["code"]) == (403, "study_not_granted")
    token = second_auditor["Authorization"].removeprefix("Bearer ")
    verified = await cli(stack, token, "--study", SECOND, "verify", "--no-stores")
    assert verified.returncode == 0, verified.stdout + verified.stderr
