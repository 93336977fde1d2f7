"""End to end: a three-subject cohort through enrollment, infusion, adverse events and
assessments, on real Kafka and PostgreSQL; the projections' endpoint figures must equal
the ones computed by hand below.

Infusions are 120 days back; every later time is an exact number of days after the
infusion, so the day counts are the ones written here.

By hand (days from the infusion, which are the study's days: the infusion is day 0):
  S-E01  complete (DORIS) at day +28 and +100; never progresses; alive  -> last seen +100
  S-E02  partial (LLDAS) at day +28; flare reported at +60; alive       -> last seen +28
  S-E03  progression at day +28 (SLEDAI-2K 10 -> 14); dies at +45
  ORR within 3 months: S-E01, S-E02 = 2/3.  Disease control from day 28: 2/3.
  PFS: 28 event, 60 event, 100 censored -> S = 2/3, 1/3, 1/3; median 60.
  OS:  28 censored, 45 event, 100 censored -> S = 1, 1/2, 1/2; median 45.
  Duration of remission: S-E01 72 censored, S-E02 32 event -> S(32) = 1/2; median 32.
  TEAE incidence 1/3; DLT rate at level 1: 0/3.
  S-E01 blood qPCR: 5000 (day 7), 20000 (day 14), 800 (day 28), 30 < LLOQ 50 (day 90)
    -> Cmax 20000 at day 14, persisting to day 28.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.kernel.signatures import verify_published
from tests.e2e.flows import BASELINE_ITEMS, PASSWORD, Site, site_team, treat, visit
from tests.e2e.stack import Stack
from tests.support import eventually

pytestmark = pytest.mark.integration


async def test_endpoint_figures_equal_the_hand_computed_ones(stack: Stack) -> None:
    team = await site_team(stack)
    session = team.investigator
    auditor = await stack.member("aud.kim", PASSWORD, "auditor")
    site = Site(stack, session)

    infused: dict[str, datetime] = {}

    def day(subject: str, n: int) -> datetime:
        return infused[subject] + timedelta(days=n)

    for subject in ("S-E01", "S-E02", "S-E03"):
        infused[subject] = await treat(team, subject, 1, days_ago=120)
        baseline = visit("baseline", day(subject, -2), BASELINE_ITEMS, "2", "10")
        await site.first_visit(subject, baseline)

    # S-E01: DORIS at +28 and +100, kinetics and autoantibodies, one TEAE
    month1 = await site.visit("S-E01", visit("month 1", day("S-E01", 28), ("low_complement",),
                                              "0.3", "5"))  # fmt: skip
    await site.remission("S-E01", month1, "complete")
    late = await site.visit("S-E01", visit("day 101", day("S-E01", 100), (), "0", "2.5"))
    await site.remission("S-E01", late, "complete")
    for n, value in ((7, "5000"), (14, "20000"), (28, "800"), (90, "30")):
        await site.post("/subjects/S-E01/car-t-kinetics", {
            "sampled_at": day("S-E01", n).isoformat(), "sample": "peripheral_blood",
            "method": "qpcr", "target": "total", "value": value, "unit": "copies/µg gDNA",
            "lloq": "50",
        })  # fmt: skip
    await site.post("/subjects/S-E01/autoantibodies", {
        "sampled_at": day("S-E01", 28).isoformat(),
        "results": [{"analyte": "anti_dsdna", "value": "40", "unit": "IU/mL",
                     "reference_high": "100"},
                    {"analyte": "c3", "value": "62", "unit": "mg/dL", "reference_low": "90",
                     "reference_high": "180"}],
    })  # fmt: skip
    report = {"term": "Cytokine release syndrome", "verbatim": "CRS",
              "onset_at": day("S-E01", 1).isoformat()}  # fmt: skip
    reported = await stack.adverse_events.post(
        "/subjects/S-E01/adverse-events", json=report, headers=session
    )
    assert reported.status_code == 201, reported.text

    # S-E02: LLDAS at +28 (partial), a flare at +60
    month1 = await site.visit("S-E02", visit("month 1", day("S-E02", 28), ("arthritis",), "1",
                                              "7.5"))  # fmt: skip
    await site.remission("S-E02", month1, "partial")
    await site.post("/subjects/S-E02/progression", {
        "kind": "flare", "description": "nephritis flare", "occurred_at":
        day("S-E02", 60).isoformat()})  # fmt: skip

    # S-E03: worse at +28 (a refused claim first), then death at +45
    worse = (*BASELINE_ITEMS, "pyuria")
    month1 = await site.visit("S-E03", visit("month 1", day("S-E03", 28), worse, "2", "10"))
    refused = await site.remission("S-E03", month1, "partial", expect=422)
    assert (refused["code"], refused["details"]["derived"]) == (
        "remission_not_supported", "progression",
    )  # fmt: skip
    await site.remission("S-E03", month1, "progression")
    before_death = datetime.now(UTC)
    died = await stack.enrollment.post("/subjects/S-E03/death", headers=session, json={
        "cause": "pneumonia", "occurred_at": day("S-E03", 45).isoformat()})  # fmt: skip
    assert died.status_code == 200, died.text

    figures: list[dict[str, Any]] = []

    async def complete() -> bool:
        answer = await stack.projections.get("/endpoints", headers=auditor)
        figures[:] = [answer.json()]
        return answer.status_code == 200 and any(
            s["event"] for s in answer.json()["overall_survival"]["subjects"]
        )

    await eventually(complete, what="the projections' endpoints include the death")
    e = figures[0]
    assert e["subjects_infused"] == 3
    assert _rate(e["dlt_rate_per_dose_level"]["1"]) == (0, 3, "0.000")
    assert _rate(e["teae_incidence"]) == (1, 3, "0.333")
    orr = e["objective_response_rate_3_months"]
    assert _rate(orr) == (2, 3, "0.667") and orr["subjects"] == ["S-E01", "S-E02"]
    assert _rate(e["disease_control_rate_from_day_28"]) == (2, 3, "0.667")
    assert _km(e["progression_free_survival"]) == [
        (28, 3, 1, 0, "2/3"), (60, 2, 1, 0, "1/3"), (100, 1, 0, 1, "1/3")]  # fmt: skip
    assert e["progression_free_survival"]["median_days"] == 60
    assert _km(e["overall_survival"]) == [
        (28, 3, 0, 1, "1"), (45, 2, 1, 0, "1/2"), (100, 1, 0, 1, "1/2")]  # fmt: skip
    assert e["overall_survival"]["median_days"] == 45
    assert _km(e["duration_of_remission"]) == [(32, 2, 1, 0, "1/2"), (72, 1, 0, 1, "1/2")]
    kinetics = e["time_courses"]["S-E01"]["car_t_kinetics"]["peripheral_blood/qpcr/total"]
    assert (kinetics["cmax"], kinetics["tmax_study_day"], kinetics["persistence_last_day"]) == (
        "20000", 14, 28)  # fmt: skip
    c3 = e["time_courses"]["S-E01"]["autoantibodies"]["c3"][0]
    assert (c3["value"], c3["unit"], c3["flag"]) == ("0.62", "g/L", "low")
    # every figure names the ledger entries it rests on: ORR names both remissions
    assert {r["type"] for r in orr["events"]} == {"CarTInfused.v1", "RemissionAssessed.v1"}

    state = (await stack.projections.get("/subjects/S-E03", headers=auditor)).json()
    assert (state["status"], state["death_cause"]) == ("died", "pneumonia")
    assert (state["response"]["response"], state["disease_activity"]["sledai_2k"]) == (
        "progression", 14,
    )  # fmt: skip

    earlier = await stack.projections.get(
        "/endpoints", params={"as_of": before_death.isoformat()}, headers=auditor
    )
    assert [s["event"] for s in earlier.json()["overall_survival"]["subjects"]] == [False] * 3

    # the signed responses verify against the published events, in the auditor's export
    exported: list[dict[str, Any]] = []

    async def checkpointed() -> bool:
        answer = await stack.projections.get("/export", params={"subject_id": "S-E01"},
                                             headers=auditor)  # fmt: skip
        exported[:] = [e["event"] for e in answer.json()["entries"]]
        return [e["type"] for e in exported].count("RemissionAssessed.v1") == 2

    await eventually(checkpointed, what="both responses of S-E01 under a checkpoint")
    for i, event in enumerate(exported):
        if event["type"] == "RemissionAssessed.v1":
            signed = exported[i + 1]
            assert signed["type"] == "RecordSigned.v2"
            assert verify_published(event, signed, stack.record_public_key())

    swimmer = await stack.projections.get("/plots/swimmer.svg", headers=auditor)
    assert swimmer.headers["content-type"] == "image/svg+xml"
    assert all(s in swimmer.text for s in ("S-E01", "S-E02", "S-E03"))
    assert (await stack.projections.get("/plots/kinetics/S-E01.svg", headers=auditor)).is_success
    missing = await stack.projections.get("/plots/kinetics/S-E02.svg", headers=auditor)
    assert missing.status_code == 404


def _rate(figure: dict[str, Any]) -> tuple[int, int, str]:
    return figure["numerator"], figure["denominator"], figure["rate"]


def _km(figure: dict[str, Any]) -> list[tuple[int, int, int, int, str]]:
    return [(s["day"], s["at_risk"], s["events"], s["censored"], s["exact"])
            for s in figure["steps"]]  # fmt: skip
