"""Steps that several end-to-end tests take through the running services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.stack import Stack
from tests.support import eventually, screening_json

PASSWORD = "an e2e passphrase"


async def enrol(stack: Stack, session: dict[str, str], subject: str, level: int | None) -> None:
    """Take a subject through enrollment; with no level, stop at eligibility."""
    consent = await stack.signature(
        session, "responsibility", f"enrollment/consent/{subject}", PASSWORD, "lin.wei"
    )
    decision = await stack.signature(
        session, "approval", f"enrollment/eligibility/{subject}", PASSWORD
    )
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/subjects", {"subject_id": subject, "site_id": "ZJU-1"}),
        (f"/subjects/{subject}/consent", {"form_version": "ICF v2.1", "signed_on": "2026-11-02",
                                           "obtained_by": "Lin Wei", "signature": consent}),
        (f"/subjects/{subject}/screening", screening_json()),
        (f"/subjects/{subject}/eligibility", {"signature": decision}),
    ]  # fmt: skip
    if level is not None:
        steps.append((f"/subjects/{subject}/enrollment", {"dose_level": level}))
    for path, body in steps:
        response = await stack.enrollment.post(path, json=body, headers=session)
        assert response.status_code in (200, 201), response.text


def today(days: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def treat(
    stack: Stack,
    session: dict[str, str],
    pharmacist: dict[str, str],
    subject: str,
    level: int,
    days_ago: int = 0,
) -> datetime:
    """Enrol, then run the whole treatment ``days_ago`` days ago; returns the infusion time."""
    await enrol(stack, session, subject, level)
    answer = await infuse(stack, session, pharmacist, subject, level, days_ago)
    return datetime.fromisoformat(answer["infusion"]["started_at"])


async def infuse(
    stack: Stack,
    session: dict[str, str],
    pharmacist: dict[str, str],
    subject: str,
    level: int,
    days_ago: int = 0,
    expect: int = 200,
) -> Any:
    """Leukapheresis, release, lymphodepletion and infusion of an enrolled subject, all
    ``days_ago`` days back; the infusion must answer ``expect``. Returns its JSON."""

    async def leukapheresis() -> bool:
        body = {"performed_on": today(-10 - days_ago), "volume_ml": "180"}
        response = await stack.infusion.post(
            f"/subjects/{subject}/leukapheresis", json=body, headers=session
        )
        assert response.status_code in (201, 409), response.text
        return response.status_code == 201

    await eventually(leukapheresis, what=f"the infusion view sees {subject} enrolled")
    release = {
        "lot_id": f"LOT-{subject}",
        "product": "CD19/BCMA",
        "car_positive_percent": "41.5",
        "viability_percent": "92",
        "sterility_passed": True,
        "release_tests_passed": True,
        "released_on": today(-6 - days_ago),
    }
    regimen = {
        "agents": [{"agent": "fludarabine", "dose_mg_per_m2": "25", "days": 3}],
        "started_on": today(-5 - days_ago),
        "completed_on": today(-3 - days_ago),
    }
    for path, body, who in (
        (f"/subjects/{subject}/products", release, pharmacist),
        (f"/subjects/{subject}/lymphodepletion", regimen, session),
    ):
        response = await stack.infusion.post(path, json=body, headers=who)
        assert response.status_code == 200, response.text
    started = datetime.now(UTC) - timedelta(days=days_ago, hours=1)
    signature = await stack.signature(
        session, "responsibility", f"infusion/infusion/{subject}", PASSWORD
    )
    infusion = {
        "weight_kg": "50",
        "lots": [
            {"lot_id": f"LOT-{subject}", "viable_car_positive_cells": str(level * 50_000_000)}
        ],
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=15)).isoformat(),
        "signature": signature,
    }
    response = await stack.infusion.post(
        f"/subjects/{subject}/infusion", json=infusion, headers=session
    )
    assert response.status_code == expect, response.text
    return response.json()
