"""End to end: the published cohort's pattern (Feng et al., Nat Med 2025: 15 infused, no
DLT, grade 1 CRS in 13/15, no ICANS, DORIS and LLDAS in 12/15 at week 12) driven through
the HTTP APIs as each role would, on real Kafka and PostgreSQL, then read from
`/endpoints` alone.

The design: 3+3 at level 1 (3 subjects, no DLT), then a signed review opens the
dose-expansion cohort at level 1 for the rest of the design's 15; a 16th is refused.
Escalation infusions are 150 days back, the expansion review 115 days back (after every
window of the first cohort closed), the expansion's infusions 110 days back. Every later
time is an exact number of days after the subject's infusion.

By hand (days from the infusion; baseline SLEDAI-2K 10 for all, two days before):
  S-P01..S-P04  DORIS (complete) at +28 and at +84 (week 12), SLEDAI-2K 0 -> change -10
  S-P05..S-P06  DORIS at +84 only, SLEDAI-2K 0                         -> change -10
  S-P07..S-P12  DORIS at +84 only, SLEDAI-2K 2 (low complement)        -> change -8
  S-P13..S-P15  stable at +84, SLEDAI-2K 8                             -> change -2
  CRS grade 1 (ASTCT: fever only) in S-P01..S-P13; none in S-P14, S-P15; no ICANS.
  DLT rate at level 1: 0/15.  TEAE incidence: 13/15.
  DORIS and LLDAS at week 12: 12/15.  ORR within 3 months: 12/15.  DCR from day 28: 15/15.
  Median SLEDAI-2K change at week 12 (15 values: six -10, six -8, three -2): -8.
  Time to first remission: 4 events at 28 (S = 11/15); 8 events and 3 censored at 84
    (S = 11/15 x 3/11 = 1/5); median 84.
  PFS and OS: no event; every subject censored at +84 (the last assessment); no median.
  Duration of remission: no event; S-P01..S-P04 censored at 56, the others at 0.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.flows import (
    BASELINE_ITEMS,
    PASSWORD,
    Site,
    Team,
    enrol,
    infusion_body,
    once_seen,
    prepare,
    treat,
    visit,
)
from tests.e2e.stack import Stack
from tests.support import eventually

pytestmark = pytest.mark.integration

SUBJECTS = [f"S-P{n:02d}" for n in range(1, 16)]
ESCALATION, EXPANSION = SUBJECTS[:3], SUBJECTS[3:]
EARLY_DORIS = SUBJECTS[:4]
DORIS_CLEAR = SUBJECTS[:6]  # week 12: no item present
DORIS_LOW_COMPLEMENT = SUBJECTS[6:12]  # week 12: low complement only (2)
STABLE = SUBJECTS[12:]  # week 12: arthritis, rash, low complement (8)
WITH_CRS = SUBJECTS[:13]


class Roles:
    """The investigator, the cell-therapy pharmacist and the auditor, logged in."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def log_in(self) -> None:
        for user, role in (("lin.wei", "investigator"), ("zhao.pharm", "cell_therapy_pharmacist"),
                           ("aud.kim", "auditor")):  # fmt: skip
            await self.stack.create_user(user, PASSWORD, role)
        self.investigator = await self.stack.log_in("lin.wei", PASSWORD)
        self.pharmacist = await self.stack.log_in("zhao.pharm", PASSWORD)
        self.auditor = await self.stack.log_in("aud.kim", PASSWORD)
        self.team = Team(self.stack, self.investigator, self.pharmacist)


async def open_expansion(stack: Stack, session: dict[str, str], level: int, days_ago: int) -> Any:
    """The investigator signs the review that opens the dose-expansion cohort, once the
    adverse-events service sees the first cohort cleared."""

    async def cleared() -> bool:
        state = (await stack.adverse_events.get("/cohort", headers=session)).json()
        return bool(state["decision"] == "escalate" and level in state["levels_cleared"])

    await eventually(cleared, what=f"level {level} cleared by 3+3")
    number = (await stack.adverse_events.get("/cohort", headers=session)).json()["reviews"] + 1
    signature = await stack.signature(
        session, "approval", f"adverse_events/safety-review/{number}", PASSWORD
    )
    body = {
        "approved_level": level, "dose_expansion": True, "signature": signature,
        "occurred_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
    }  # fmt: skip
    return await stack.adverse_events.post("/safety-reviews", json=body, headers=session)


async def infuse_in_expansion(
    stack: Stack, roles: Roles, subject: str, level: int, days_ago: int
) -> datetime:
    """Enrol, prepare and infuse a subject of the expansion: the infusion service answers
    `cohort_full` until its view of the reviews has the expansion."""
    await enrol(stack, roles.investigator, subject, level)
    await prepare(roles.team, subject, days_ago)

    async def infusion() -> httpx.Response:
        body = await infusion_body(stack, roles.investigator, subject, level, days_ago)
        path = f"/subjects/{subject}/infusion"
        return await stack.infusion.post(path, json=body, headers=roles.investigator)

    expansion = f"the infusion service opens the expansion for {subject}"
    answer = await once_seen(infusion, 200, expansion, waiting="cohort_full")
    return datetime.fromisoformat(answer["infusion"]["started_at"])


async def grade_1_crs(stack: Stack, session: dict[str, str], subject: str, at: datetime) -> None:
    """Report CRS a day after the infusion and grade it by its ASTCT components: fever of
    38.6 C, no hypotension, no oxygen: grade 1."""
    report = {"term": "Cytokine release syndrome", "verbatim": "fever after infusion",
              "onset_at": (at + timedelta(days=1)).isoformat()}  # fmt: skip

    async def report_crs() -> httpx.Response:
        path = f"/subjects/{subject}/adverse-events"
        return await stack.adverse_events.post(path, json=report, headers=session)

    infused = f"the adverse-events service sees {subject} infused"
    reported = await once_seen(report_crs, 201, infused, waiting="subject_not_infused")
    record, version = reported["id"], reported["version"]
    signature = await stack.signature(
        session, "authorship", f"adverse_events/grade/{record}@{version}", PASSWORD
    )
    crs = {"temperature_c": "38.6", "antipyretics_or_immunosuppression_given": False,
           "hypotension": "none", "oxygen": "none"}  # fmt: skip
    graded = await stack.adverse_events.post(
        f"/adverse-events/{record}/grade", json={"crs": crs, "signature": signature},
        headers=session,
    )  # fmt: skip
    assert graded.status_code == 200, graded.text


async def test_the_published_cohort_gives_the_papers_figures_from_endpoints_alone(
    stack: Stack,
) -> None:
    roles = Roles(stack)
    await roles.log_in()
    site = Site(stack, roles.investigator)
    infused: dict[str, datetime] = {}

    def day(subject: str, n: int) -> datetime:
        return infused[subject] + timedelta(days=n)

    # Escalation: 3 at level 1, no DLT; the review opens the expansion at level 1.
    for subject in ESCALATION:
        infused[subject] = await treat(roles.team, subject, 1, days_ago=150)
    opened = await open_expansion(stack, roles.investigator, 1, days_ago=115)
    assert opened.status_code == 201, opened.text
    for subject in EXPANSION:
        infused[subject] = await infuse_in_expansion(stack, roles, subject, 1, days_ago=110)

    # The design's cap: a 16th subject at the level is refused.
    await enrol(stack, roles.investigator, "S-P16", 1)
    await prepare(roles.team, "S-P16", 110)
    sixteenth = await stack.infusion.post(
        "/subjects/S-P16/infusion",
        json=await infusion_body(stack, roles.investigator, "S-P16", 1, 110),
        headers=roles.investigator,
    )
    assert (sixteenth.status_code, sixteenth.json()["code"]) == (409, "cohort_full")

    # Safety: grade 1 CRS in 13 of 15, nothing else.
    for subject in WITH_CRS:
        await grade_1_crs(stack, roles.investigator, subject, infused[subject])

    # Efficacy: baseline, an early DORIS for four, the week-12 visit for all.
    for subject in SUBJECTS:
        await site.first_visit(subject, visit("baseline", day(subject, -2), BASELINE_ITEMS,
                                              "2", "10"))  # fmt: skip
    for subject in EARLY_DORIS:
        week_4 = await site.visit(subject, visit("week 4", day(subject, 28), (), "0.2", "5"))
        await site.remission(subject, week_4, "complete")
    week_12_items = {
        **dict.fromkeys(DORIS_CLEAR, ((), "0.2", "5", "complete")),
        **dict.fromkeys(DORIS_LOW_COMPLEMENT, (("low_complement",), "0.3", "5", "complete")),
        **dict.fromkeys(STABLE, (("arthritis", "rash", "low_complement"), "1.5", "10", "stable")),
    }
    for subject, (items, pga, prednisone, response) in week_12_items.items():
        week_12 = await site.visit(subject, visit("week 12", day(subject, 84), items, pga,
                                                  prednisone))  # fmt: skip
        await site.remission(subject, week_12, response)

    # The auditor reads /endpoints once the ledger has every remission.
    figures: list[dict[str, Any]] = []

    async def complete() -> bool:
        answer = await stack.projections.get("/endpoints", headers=roles.auditor)
        assert answer.status_code == 200, answer.text
        figures[:] = [answer.json()]
        e = answer.json()
        remissions = [r for r in e["time_to_first_remission"]["events"]
                      if r["type"] == "RemissionAssessed.v1"]  # fmt: skip
        return (
            e["subjects_infused"] == 15
            and len(e["disease_control_rate_from_day_28"]["events"]) == 15 + 15
            and len(remissions) == 12  # the first remission of each responder
            and len(e["sledai_2k_change_from_baseline"]["week 12"]["evaluable"]) == 15
            and e["crs_incidence_by_maximum_grade"]["any_grade"]["numerator"] == 13
        )

    await eventually(complete, timeout=120, what="every remission in the projections' endpoints")
    e = figures[0]

    assert e["subjects_infused"] == 15
    assert _rate(e["dlt_rate_per_dose_level"]["1"]) == (0, 15, "0.000")  # no DLT
    assert list(e["dlt_rate_per_dose_level"]) == ["1"]
    crs = e["crs_incidence_by_maximum_grade"]
    assert _grades(crs) == {"0": 2, "1": 13, "2": 0, "3": 0, "4": 0, "5": 0}  # 13/15 grade 1
    assert crs["by_maximum_grade"]["1"]["subjects"] == WITH_CRS
    assert _rate(crs["any_grade"]) == (13, 15, "0.867")
    icans = e["icans_incidence_by_maximum_grade"]
    assert _grades(icans) == {"0": 15, "1": 0, "2": 0, "3": 0, "4": 0, "5": 0}  # no ICANS
    assert _rate(e["teae_incidence"]) == (13, 15, "0.867")

    week_12 = e["remission_at_visit"]["week 12"]
    assert _rate(week_12["doris"]) == (12, 15, "0.800")  # 12/15 DORIS at week 12
    assert _rate(week_12["lldas"]) == (12, 15, "0.800")  # 12/15 LLDAS at week 12
    assert week_12["doris"]["subjects"] == SUBJECTS[:12] == week_12["lldas"]["subjects"]
    window = week_12["windows"]["S-P01"]
    assert (window["target_study_day"] - window["first_study_day"],
            window["last_study_day"] - window["target_study_day"]) == (7, 7)  # fmt: skip

    change = e["sledai_2k_change_from_baseline"]["week 12"]
    assert change["median_change"] == "-8"
    by_subject = {r["subject_id"]: (r["baseline"], r["at_visit"], r["change"])
                  for r in change["subjects"]}  # fmt: skip
    assert by_subject == {
        **dict.fromkeys(DORIS_CLEAR, (10, 0, -10)),
        **dict.fromkeys(DORIS_LOW_COMPLEMENT, (10, 2, -8)),
        **dict.fromkeys(STABLE, (10, 8, -2)),
    }

    ttr = e["time_to_first_remission"]
    assert _km(ttr) == [(28, 15, 4, 0, "11/15"), (84, 11, 8, 3, "1/5")]
    assert ttr["median_days"] == 84

    orr = e["objective_response_rate_3_months"]
    assert _rate(orr) == (12, 15, "0.800") and orr["subjects"] == SUBJECTS[:12]
    assert _rate(e["disease_control_rate_from_day_28"]) == (15, 15, "1.000")
    for name in ("progression_free_survival", "overall_survival"):
        assert e[name]["median_days"] is None
        assert {(s["days"], s["event"]) for s in e[name]["subjects"]} == {(84, False)}
    dor = e["duration_of_remission"]
    assert dor["median_days"] is None
    assert {s["subject_id"]: s["days"] for s in dor["subjects"]} == {
        **dict.fromkeys(EARLY_DORIS, 56), **dict.fromkeys(SUBJECTS[4:12], 0),
    }  # fmt: skip
    assert not any(s["event"] for s in dor["subjects"])


def _rate(figure: dict[str, Any]) -> tuple[int, int, str]:
    return figure["numerator"], figure["denominator"], figure["rate"]


def _grades(figure: dict[str, Any]) -> dict[str, int]:
    return {grade: f["numerator"] for grade, f in figure["by_maximum_grade"].items()}


def _km(figure: dict[str, Any]) -> list[tuple[int, int, int, int, str]]:
    return [(s["day"], s["at_risk"], s["events"], s["censored"], s["exact"])
            for s in figure["steps"]]  # fmt: skip
