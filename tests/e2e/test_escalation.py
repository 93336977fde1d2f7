"""End to end 3+3 escalation across enrollment, infusion and adverse events, all through
real Kafka and PostgreSQL. Infusions are recorded 30-40 days back so that DLT windows
have closed; the window-open case is dosed today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.flows import PASSWORD, enrol, infuse, once_seen, site_team, treat
from tests.e2e.stack import Stack
from tests.support import eventually

pytestmark = pytest.mark.integration


async def approve(
    stack: Stack, session: dict[str, str], level: int, days_ago: int | None = None
) -> Any:
    """Sign the next safety review; ``days_ago``: when it met (clinical time), else now."""
    number = (await stack.adverse_events.get("/cohort", headers=session)).json()["reviews"] + 1
    signature = await stack.signature(
        session, "approval", f"adverse_events/safety-review/{number}", PASSWORD
    )
    body: dict[str, Any] = {"approved_level": level, "signature": signature}
    if days_ago is not None:
        body["occurred_at"] = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return await stack.adverse_events.post("/safety-reviews", json=body, headers=session)


async def enrol_when_open(stack: Stack, session: dict[str, str], subject: str, level: int) -> None:
    """Enrol at ``level`` once the enrollment service's cohort view has seen the review."""
    await enrol(stack, session, subject, None)

    async def enrollment() -> httpx.Response:
        path, body = f"/subjects/{subject}/enrollment", {"dose_level": level}
        return await stack.enrollment.post(path, json=body, headers=session)

    open_level = f"level {level} open in enrollment"
    await once_seen(enrollment, 200, open_level, waiting="dose_level_not_allowed")


async def dlt(stack: Stack, session: dict[str, str], subject: str, infused_at: datetime) -> None:
    """Report grade 4 CRS two days after the infusion and adjudicate it a DLT."""
    onset = (infused_at + timedelta(days=2)).isoformat()
    report = {"term": "Cytokine release syndrome", "verbatim": "CRS", "onset_at": onset}
    response = await stack.adverse_events.post(
        f"/subjects/{subject}/adverse-events", json=report, headers=session
    )
    assert response.status_code == 201, response.text
    rid, version = response.json()["id"], response.json()["version"]
    crs = {"temperature_c": "39.5", "antipyretics_or_immunosuppression_given": False,
           "hypotension": "multiple_vasopressors", "oxygen": "none"}  # fmt: skip
    sign = await stack.signature(
        session, "authorship", f"adverse_events/grade/{rid}@{version}", PASSWORD
    )
    graded = await stack.adverse_events.post(
        f"/adverse-events/{rid}/grade", json={"crs": crs, "signature": sign}, headers=session
    )
    assert graded.status_code == 200, graded.text
    version = graded.json()["version"]
    sign = await stack.signature(
        session, "approval", f"adverse_events/dlt/{rid}@{version}", PASSWORD
    )
    body = {"is_dlt": True, "criterion": "crs_grade_4", "reason": "grade 4 CRS", "signature": sign}
    adjudicated = await stack.adverse_events.post(
        f"/adverse-events/{rid}/dlt", json=body, headers=session
    )
    assert adjudicated.status_code == 200, adjudicated.text


async def state_when(stack: Stack, session: dict[str, str], **expected: Any) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def matches() -> bool:
        state = (await stack.adverse_events.get("/cohort", headers=session)).json()
        seen[:] = [state]
        return all(state[k] == v for k, v in expected.items())

    await eventually(matches, what=f"cohort state {expected}")
    return seen[0]


async def test_three_plus_three_escalates_expands_and_stops(stack: Stack) -> None:
    team = await site_team(stack)
    session = team.investigator

    # Each cohort is dosed after the review that opened it, which met after every DLT
    # window of the cohort before had closed (day 29 began: the infusion + 29 days), in
    # clinical time.
    for n in (1, 2, 3):  # level 1: three subjects, no DLT
        await treat(team, f"S-60{n}", level=1, days_ago=130)
    await state_when(stack, session, level=1, dosed=3, decision="escalate", next_level=2)
    assert (await approve(stack, session, 2, days_ago=100)).status_code == 201

    infused = {}
    for n in (4, 5, 6):  # level 2: three subjects, one DLT
        await enrol_when_open(stack, session, f"S-60{n}", 2)
        infused[n] = await infuse(team, f"S-60{n}", 2, days_ago=95)
    await state_when(stack, session, level=2, dosed=3)
    await dlt(stack, session, "S-605", _started(infused[5]))
    await state_when(stack, session, level=2, decision="expand", next_level=2, dlts=1)
    assert (await approve(stack, session, 2, days_ago=65)).status_code == 201

    for n in (7, 8, 9):  # three more at level 2: a second DLT
        await enrol_when_open(stack, session, f"S-60{n}", 2)
        infused[n] = await infuse(team, f"S-60{n}", 2, days_ago=60)
    await state_when(stack, session, level=2, dosed=6)
    await dlt(stack, session, "S-608", _started(infused[8]))
    final = await state_when(stack, session, level=2, decision="stop", dlts=2)
    assert final["next_level"] != 3

    refused = await approve(stack, session, 3)
    assert (refused.status_code, refused.json()["code"]) == (409, "safety_review_refused")

    auditor = await stack.member("aud.kim", PASSWORD, "auditor")
    trial: list[dict[str, Any]] = []

    async def summarised() -> bool:
        trial[:] = [(await stack.projections.get("/trial", headers=auditor)).json()]
        return bool(trial[0]["dose_levels"].get("2", {}).get("dlts") == 2)

    await eventually(summarised, what="the trial summary in the projections")
    assert trial[0]["dose_levels"] == {
        "1": {"dosed": 3, "dlts": 0, "dlt_rate": "0/3"},
        "2": {"dosed": 6, "dlts": 2, "dlt_rate": "2/6"},
    }
    assert trial[0]["teae_incidence"] == {"subjects_with_teae": 2, "subjects_infused": 9}
    assert [(d["approved_level"], d["decision"]) for d in trial[0]["cohort_decisions"]] == [
        (2, "escalate"),
        (2, "expand"),
    ]
    # in clinical order, every cohort is dosed after the review that opened it
    timeline = [(s["step"], s["dose_level"]) for s in trial[0]["escalation_timeline"]]
    cohort_1, cohort_2 = [("infusion", 1)] * 3, [("infusion", 2)] * 3
    review = ("safety_review", 2)
    assert timeline == [*cohort_1, review, *cohort_2, review, *cohort_2]


async def test_no_new_cohort_while_a_dlt_window_is_open(stack: Stack) -> None:
    team = await site_team(stack)
    session = team.investigator
    for n in (1, 2, 3):  # dosed today: their DLT windows are open
        await treat(team, f"S-70{n}", level=1)
    await state_when(stack, session, level=1, dosed=3, open_windows=3, decision="wait")

    refused = await approve(stack, session, 2)
    assert (refused.status_code, refused.json()["code"]) == (409, "safety_review_refused")

    await enrol(stack, session, "S-704", None)
    level_2 = await stack.enrollment.post(
        "/subjects/S-704/enrollment", json={"dose_level": 2}, headers=session
    )
    assert (level_2.status_code, level_2.json()["code"]) == (409, "dose_level_not_allowed")

    await enrol(stack, session, "S-705", 1)  # a fourth at level 1: the cohort is full
    full = await infuse(team, "S-705", 1, expect=409)
    assert full["code"] == "cohort_full"


def _started(answer: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(answer["infusion"]["started_at"])
