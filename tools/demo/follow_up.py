"""A dosed subject's follow-up through the assessments and enrollment APIs, in clinical
order: visits (SLEDAI-2K items, PGA, steroid dose) with their autoantibody panels, the
signed response at each visit after the infusion, CAR-T kinetics in blood and marrow,
a flare, and a withdrawal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.contracts.assessments import SLEDAI_2K_ITEMS
from tools.demo.clinical import LLOQ
from tools.demo.plan import Sample, SubjectPlan, Visit
from tools.demo.team import Team

NOT_INFUSED_YET = frozenset({"subject_not_infused"})
Send = Callable[[], Awaitable[None]]


async def follow_up(team: Team, plan: SubjectPlan) -> None:
    """Every follow-up step of the subject, earliest clinical time first."""
    steps: list[tuple[datetime, Send]] = [
        (v.at, _visit_step(team, plan.subject_id, v)) for v in plan.visits
    ]
    steps += [(s.at, _sample_step(team, plan.subject_id, s)) for s in plan.kinetics]
    for body, service, step in ((plan.flare, "assessments", "progression"),
                                (plan.withdrawal, "enrollment", "withdrawal")):  # fmt: skip
        if body is not None:
            when = datetime.fromisoformat(body["occurred_at"])
            steps.append((when, _post(team, service, plan.subject_id, step, body)))
    for _, send in sorted(steps, key=lambda s: s[0]):
        await send()


def _post(team: Team, service: str, sid: str, step: str, body: dict[str, Any]) -> Send:
    async def send() -> None:
        await team.investigator.post(service, f"/subjects/{sid}/{step}", body, correlation=sid)

    return send


def _visit_step(team: Team, sid: str, visit: Visit) -> Send:
    async def send() -> None:
        body = {
            "label": visit.label, "assessed_at": visit.at.isoformat(),
            "items": {item: item in visit.items for item in SLEDAI_2K_ITEMS},
            "pga": visit.pga, "prednisone_mg_per_day": visit.prednisone,
            "maintenance_immunosuppression_only": True,
        }  # fmt: skip
        record = await team.sub_investigator.post(
            "assessments", f"/subjects/{sid}/disease-activity", body,
            expect=(201,), retry=NOT_INFUSED_YET, correlation=sid,
        )  # fmt: skip
        panel = {"sampled_at": visit.at.isoformat(), "results": list(visit.panel)}
        await team.coordinator.post("assessments", f"/subjects/{sid}/autoantibodies", panel,
                                    expect=(201,), correlation=sid)  # fmt: skip
        if visit.response is not None:
            await _remission(team, sid, record["visits"][-1]["event_id"], visit.response)

    return send


async def _remission(team: Team, sid: str, visit_event_id: str, response: str) -> None:
    """The investigator reads the record, then signs the response the rules derive."""
    investigator = team.investigator

    async def body() -> dict[str, Any]:
        record = await investigator.get("assessments", f"/subjects/{sid}/assessments")
        purpose = f"assessments/remission/{sid}@{record['version']}"
        return {"visit_event_id": visit_event_id, "response": response,
                "signature": await investigator.sign("approval", purpose)}  # fmt: skip

    await investigator.post("assessments", f"/subjects/{sid}/remission", body,
                            expect=(201,), correlation=sid)  # fmt: skip


def _sample_step(team: Team, sid: str, sample: Sample) -> Send:
    async def send() -> None:
        body = {"sampled_at": sample.at.isoformat(), "sample": sample.sample, "method": "qpcr",
                "target": "total", "value": str(sample.value), "unit": "copies/ug gDNA",
                "lloq": LLOQ}  # fmt: skip
        await team.coordinator.post(
            "assessments", f"/subjects/{sid}/car-t-kinetics", body,
            expect=(201,), retry=NOT_INFUSED_YET, correlation=sid,
        )  # fmt: skip

    return send
