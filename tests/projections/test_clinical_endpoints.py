"""Endpoint definitions at their boundaries, from hand-made ledger entries (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from services.projections import plots
from services.projections.clinical_endpoints import Course, courses, trial_endpoints
from services.projections.clinical_endpoints import infused as infused_courses
from services.projections.views import subject_state
from shared.kernel.envelope import CloudEvent
from tests.support import NOW

DAY0 = NOW - timedelta(days=200)  # the infusion: the study's day 0, CDISC day 1


def entry(subject: str, type_: str, at: datetime, **data: Any) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(), source="/trial-ledger/tests", type=type_, subject=subject, time=at,
        recordedtime=at, sequence="1", correlationid="c", data={"record_id": subject, **data},
    )  # fmt: skip


def infused(subject: str) -> CloudEvent:
    return entry(subject, "CarTInfused.v1", DAY0, started_at=DAY0.isoformat(), dose_level=2)


def response(subject: str, day: int, category: str) -> CloudEvent:
    """A response on the study's ``day`` (infusion + ``day`` days), published as the v1
    contract counts it (CDISC: one more)."""
    at = DAY0 + timedelta(days=day)
    return entry(subject, "RemissionAssessed.v1", at, study_day=day + 1, response=category)


def figures(*events: CloudEvent) -> dict[str, Any]:
    return trial_endpoints(enumerate(events, start=1))


def test_endpoints_name_their_version_and_study_day_convention() -> None:
    e = figures(infused("A"))
    assert (e["version"], e["study_day_convention"]) == (
        "NCT05030779-endpoints/2", "infusion_day_0"
    )  # fmt: skip


def test_objective_response_counts_days_0_to_90_only_infusion_plus_90_days() -> None:
    e = figures(infused("A"), infused("B"), response("A", 90, "partial"),
                response("B", 91, "complete"))  # fmt: skip
    orr = e["objective_response_rate_3_months"]
    assert (orr["subjects"], orr["population"]) == (["A"], ["A", "B"])


def test_disease_control_reads_the_first_response_from_day_28() -> None:
    e = figures(
        infused("A"), infused("B"), infused("C"),
        response("A", 27, "progression"), response("A", 28, "stable"),
        response("B", 29, "progression"), response("B", 60, "complete"),
    )  # fmt: skip
    dcr = e["disease_control_rate_from_day_28"]
    assert (dcr["subjects"], dcr["numerator"], dcr["denominator"]) == (["A"], 1, 3)


def test_a_subject_never_assessed_is_censored_at_the_infusion() -> None:
    e = figures(infused("A"))
    assert e["overall_survival"]["subjects"] == [{"subject_id": "A", "days": 0, "event": False}]
    assert e["overall_survival"]["median_days"] is None


def test_entries_before_a_position_give_the_figures_as_of_then() -> None:
    events = [infused("A"), response("A", 29, "complete"),
              entry("A", "SubjectDied.v1", DAY0 + timedelta(days=40), cause="x")]  # fmt: skip
    later, earlier = figures(*events), figures(*events[:2])
    assert later["overall_survival"]["subjects"][0] == {"subject_id": "A", "days": 40,
                                                         "event": True}  # fmt: skip
    assert earlier["overall_survival"]["subjects"][0]["event"] is False
    assert later["duration_of_remission"]["subjects"][0]["days"] == 11  # day 29 -> day 40


def test_plots_are_svg_naming_the_subjects_and_the_same_bytes_every_time() -> None:
    kinetics = entry("A", "CarTKineticsMeasured.v1", DAY0 + timedelta(days=7), study_day=8,
                     sample="peripheral_blood", method="qpcr", target="total", value="500",
                     unit="copies/ug gDNA", lloq="50", below_lloq=False)  # fmt: skip
    population = infused_population(infused("A"), infused("B"), kinetics)
    swimmer = plots.swimmer_svg(population)
    assert swimmer == plots.swimmer_svg(population)
    assert swimmer.startswith(b"<?xml") and b"A (DL2)" in swimmer and b"B (DL2)" in swimmer
    assert b"peripheral_blood/qpcr/total" in plots.kinetics_svg(population[0])


def test_time_courses_are_in_the_study_s_days() -> None:
    kinetics = entry("A", "CarTKineticsMeasured.v1", DAY0 + timedelta(days=7), study_day=8,
                     sample="peripheral_blood", method="qpcr", target="total", value="500",
                     unit="copies/ug gDNA", lloq="50", below_lloq=False)  # fmt: skip
    [course] = infused_population(infused("A"), kinetics)
    series = trial_endpoints(enumerate([infused("A"), kinetics], start=1))["time_courses"]["A"]
    point = series["car_t_kinetics"]["peripheral_blood/qpcr/total"]
    assert (point["tmax_study_day"], point["points"][0]["study_day"]) == (7, 7)
    assert course.kinetics[0].study_day == 7


def infused_population(*events: CloudEvent) -> list[Course]:
    return infused_courses(courses(enumerate(events, start=1)))


def test_the_subject_view_shows_the_study_s_days() -> None:
    """A remission published on CDISC day 29 (infusion + 28 days) is the study's day 28."""
    published = entry("A", "RemissionAssessed.v1", DAY0 + timedelta(days=28), study_day=29,
                      response="complete", rule_version="NCT05030779-sle-response/1")  # fmt: skip
    state = subject_state(None, published, 1)
    assert state["response"]["study_day"] == 28
