"""Adverse events and dose escalation through the adverse-events API: every event
reported, graded (ASTCT components for CRS), assessed and resolved; DLTs adjudicated in
the window; and a signed safety review once a cohort's 3+3 state allows the next one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tools.demo.client import DemoError, Session, wait_for
from tools.demo.plan import Cohort, SafetyEvent, SubjectPlan
from tools.demo.team import Team

NOT_INFUSED_YET = frozenset({"subject_not_infused"})


class _Record:
    """One adverse event's record: its id and current version, which every signature
    names (``adverse_events/<step>/<id>@<version>``)."""

    def __init__(self, answer: dict[str, Any], subject_id: str) -> None:
        self.id, self.version, self.subject_id = answer["id"], answer["version"], subject_id

    async def step(
        self, who: Session, step: str, body: dict[str, Any], meaning: str | None = None
    ) -> None:
        path = f"/adverse-events/{self.id}/{step}"
        sent: Any = body
        if meaning is not None:
            sent = who.signed(meaning, f"adverse_events/{step}/{self.id}@{self.version}", body)
        answer = await who.post("adverse_events", path, sent, correlation=self.subject_id)
        self.version = answer["version"]


async def adverse_events(team: Team, plan: SubjectPlan) -> None:
    for event in plan.safety:
        await _adverse_event(team, plan.subject_id, event)


async def _adverse_event(team: Team, subject_id: str, event: SafetyEvent) -> None:
    reported = await team.coordinator.post(
        "adverse_events", f"/subjects/{subject_id}/adverse-events", event.report,
        expect=(201,), retry=NOT_INFUSED_YET, correlation=subject_id,
    )  # fmt: skip
    record, grader = _Record(reported, subject_id), team.sub_investigator
    await record.step(grader, "grade", event.grading, "authorship")
    if event.regrading is not None:
        await record.step(grader, "regrade", event.regrading, "authorship")
    await record.step(grader, "seriousness", event.seriousness)
    await record.step(grader, "causality", event.causality, "authorship")
    if event.dlt is not None:
        await record.step(team.investigator, "dlt", event.dlt, "approval")
    await record.step(team.coordinator, "resolution", event.resolution)


async def review(team: Team, cohort: Cohort, reviewed_at: datetime) -> dict[str, Any]:
    """Wait until the adverse-events service's 3+3 state is the cohort's (every infusion
    and DLT seen, every window closed), then sign the review that opens the next level,
    dated when it met (``reviewed_at``, clinical time)."""
    investigator = team.investigator
    expected = {"dosed": cohort.dosed, "dlts": cohort.dlts, "decision": cohort.decision,
                "next_level": cohort.opens, "open_windows": 0}  # fmt: skip
    seen: dict[str, Any] = {}

    async def decided() -> bool:
        seen.update(await investigator.get("adverse_events", "/cohort"))
        return all(seen[key] == value for key, value in expected.items())

    try:
        await wait_for(decided, f"the 3+3 state {expected}", investigator.api.patience)
    except DemoError as error:
        raise DemoError(f"{error}; the adverse-events service said {seen}") from None
    number = seen["reviews"] + 1
    body = {"approved_level": cohort.opens, "occurred_at": reviewed_at.isoformat()}
    answer: dict[str, Any] = await investigator.post("adverse_events", "/safety-reviews",
        investigator.signed("approval", f"adverse_events/safety-review/{number}", body),
        expect=(201,))  # fmt: skip
    return answer
