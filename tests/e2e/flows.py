"""Steps that several end-to-end tests take through the running services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from shared.kernel.settings import ServiceSettings
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


async def once_seen(
    request: Callable[[], Awaitable[httpx.Response]],
    success: int,
    what: str,
    waiting: str | None = None,
) -> Any:
    """``request`` sent again while it is refused with a 409 because another service's view
    has not seen the trial's last step yet (coded ``waiting``, when given), until it answers
    ``success``; returns that answer's JSON. ``what``: what it waits for, named on a timeout."""
    answers: list[Any] = []

    async def accepted() -> bool:
        response = await request()
        assert response.status_code in (success, 409), response.text
        if response.status_code == 409 and waiting is not None:
            assert response.json()["code"] == waiting, response.text
        answers[:] = [response.json()]
        return response.status_code == success

    await eventually(accepted, what=what)
    return answers[0]


def today(days: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class Team:
    """The site's investigator and cell-therapy pharmacist, logged in to the running
    services (their sessions): who take a subject through enrollment and treatment."""

    stack: Stack
    investigator: dict[str, str]
    pharmacist: dict[str, str]


async def site_team(stack: Stack) -> Team:
    """New accounts of the investigator lin.wei and the pharmacist zhao.pharm, logged in."""
    investigator = await stack.member("lin.wei", PASSWORD, "investigator")
    pharmacist = await stack.member("zhao.pharm", PASSWORD, "cell_therapy_pharmacist")
    return Team(stack, investigator, pharmacist)


async def treat(team: Team, subject: str, level: int, days_ago: int = 0) -> datetime:
    """Enrol, then run the whole treatment ``days_ago`` days ago; returns the infusion time."""
    await enrol(team.stack, team.investigator, subject, level)
    answer = await infuse(team, subject, level, days_ago)
    return datetime.fromisoformat(answer["infusion"]["started_at"])


async def infuse(team: Team, subject: str, level: int, days_ago: int = 0, expect: int = 200) -> Any:
    """Leukapheresis, release, lymphodepletion and infusion of an enrolled subject, all
    ``days_ago`` days back; the infusion must answer ``expect``. Returns its JSON."""
    await prepare(team, subject, days_ago)
    body = await infusion_body(team.stack, team.investigator, subject, level, days_ago)
    response = await team.stack.infusion.post(
        f"/subjects/{subject}/infusion", json=body, headers=team.investigator
    )
    assert response.status_code == expect, response.text
    return response.json()


async def prepare(team: Team, subject: str, days_ago: int) -> None:
    """Leukapheresis, product release and lymphodepletion, ``days_ago`` days back."""
    stack, session = team.stack, team.investigator

    async def leukapheresis() -> httpx.Response:
        body = {"performed_on": today(-10 - days_ago), "volume_ml": "180"}
        path = f"/subjects/{subject}/leukapheresis"
        return await stack.infusion.post(path, json=body, headers=session)

    await once_seen(leukapheresis, 201, f"the infusion view sees {subject} enrolled")
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
        (f"/subjects/{subject}/products", release, team.pharmacist),
        (f"/subjects/{subject}/lymphodepletion", regimen, session),
    ):
        response = await stack.infusion.post(path, json=body, headers=who)
        assert response.status_code == 200, response.text


async def infusion_body(
    stack: Stack, session: dict[str, str], subject: str, level: int, days_ago: int
) -> dict[str, Any]:
    """The signed infusion, started ``days_ago`` days and one hour back."""
    started = datetime.now(UTC) - timedelta(days=days_ago, hours=1)
    signature = await stack.signature(
        session, "responsibility", f"infusion/infusion/{subject}", PASSWORD
    )
    return {
        "weight_kg": "50",
        "lots": [
            {"lot_id": f"LOT-{subject}", "viable_car_positive_cells": str(level * 50_000_000)}
        ],
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=15)).isoformat(),
        "signature": signature,
    }


BASELINE_ITEMS = ("arthritis", "rash", "low_complement", "increased_dna_binding")  # 10
ITEMS = [
    "seizure", "psychosis", "organic_brain_syndrome", "visual_disturbance",
    "cranial_nerve_disorder", "lupus_headache", "cerebrovascular_accident", "vasculitis",
    "arthritis", "myositis", "urinary_casts", "haematuria", "proteinuria", "pyuria", "rash",
    "alopecia", "mucosal_ulcers", "pleurisy", "pericarditis", "low_complement",
    "increased_dna_binding", "fever", "thrombocytopenia", "leukopenia",
]  # fmt: skip


def visit(label: str, at: datetime, present: tuple[str, ...], pga: str, pred: str) -> Any:
    return {
        "label": label, "assessed_at": at.isoformat(),
        "items": {item: item in present for item in ITEMS}, "pga": pga,
        "prednisone_mg_per_day": pred, "maintenance_immunosuppression_only": True,
    }  # fmt: skip


class Site:
    """The investigator's session against the running services: the first study's, or,
    with ``study``, that study's (its routes under ``/studies/<id>``, a session of it)."""

    def __init__(self, stack: Stack, session: dict[str, str], study: str | None = None) -> None:
        self.stack, self.session, self.study = stack, session, study
        self.prefix = "" if study is None else f"/studies/{study}"

    async def post(self, path: str, body: Any, expect: int = 201) -> Any:
        response = await self.stack.assessments.post(
            self.prefix + path, json=body, headers=self.session
        )
        assert response.status_code == expect, response.text
        return response.json()

    async def first_visit(self, subject: str, body: Any) -> Any:
        """The first assessment waits for the assessments service's infusion view."""

        async def first() -> httpx.Response:
            path = f"{self.prefix}/subjects/{subject}/disease-activity"
            return await self.stack.assessments.post(path, json=body, headers=self.session)

        return await once_seen(first, 201, f"the assessments service sees {subject} infused")

    async def visit(self, subject: str, body: Any) -> str:
        record = await self.post(f"/subjects/{subject}/disease-activity", body)
        return str(record["visits"][-1]["event_id"])

    async def remission(self, subject: str, visit_id: str, response: str, expect: int = 201) -> Any:
        path = f"{self.prefix}/subjects/{subject}/assessments"
        current = (await self.stack.assessments.get(path, headers=self.session)).json()
        signature = await self.stack.signature(
            self.session, "approval",
            f"assessments/remission/{subject}@{current['version']}", PASSWORD,
            study_id=self.study,
        )  # fmt: skip
        body = {"visit_event_id": visit_id, "response": response, "signature": signature}
        return await self.post(f"/subjects/{subject}/remission", body, expect)


async def stored_events(settings: ServiceSettings, store: str) -> int:
    """How many events a service's store holds (``store``: its events table's name)."""
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        table = f'"{settings.database.schema}".{store}'
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()
