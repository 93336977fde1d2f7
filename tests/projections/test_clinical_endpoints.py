"""Endpoint definitions at their boundaries, from hand-made ledger entries (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from services.projections import plots
from services.projections.clinical_endpoints import Course, courses, trial_endpoints
from services.projections.clinical_endpoints import infused as infused_courses
from shared.kernel.envelope import CloudEvent
from tests.support import NOW

DAY1 = NOW - timedelta(days=200)


def entry(subject: str, type_: str, at: datetime, **data: Any) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(), source="/trial-ledger/tests", type=type_, subject=subject, time=at,
        recordedtime=at, sequence="1", correlationid="c", data={"record_id": subject, **data},
    )  # fmt: skip


def infused(subject: str) -> CloudEvent:
    return entry(subject, "CarTInfused.v1", DAY1, started_at=DAY1.isoformat(), dose_level=2)


def response(subject: str, study_day: int, category: str) -> CloudEvent:
    at = DAY1 + timedelta(days=study_day - 1)
    return entry(subject, "RemissionAssessed.v1", at, study_day=study_day, response=category)


def figures(*events: CloudEvent) -> dict[str, Any]:
    return trial_endpoints(enumerate(events, start=1))


def test_objective_response_counts_study_days_1_to_90_only() -> None:
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
              entry("A", "SubjectDied.v1", DAY1 + timedelta(days=40), cause="x")]  # fmt: skip
    later, earlier = figures(*events), figures(*events[:2])
    assert later["overall_survival"]["subjects"][0] == {"subject_id": "A", "days": 40,
                                                         "event": True}  # fmt: skip
    assert earlier["overall_survival"]["subjects"][0]["event"] is False
    assert later["duration_of_remission"]["subjects"][0]["days"] == 12  # day 29 -> day 41


def test_plots_are_svg_naming_the_subjects_and_the_same_bytes_every_time() -> None:
    kinetics = entry("A", "CarTKineticsMeasured.v1", DAY1 + timedelta(days=7), study_day=8,
                     sample="peripheral_blood", method="qpcr", target="total", value="500",
                     unit="copies/ug gDNA", lloq="50", below_lloq=False)  # fmt: skip
    population = infused_population(infused("A"), infused("B"), kinetics)
    swimmer = plots.swimmer_svg(population)
    assert swimmer == plots.swimmer_svg(population)
    assert swimmer.startswith(b"<?xml") and b"A (DL2)" in swimmer and b"B (DL2)" in swimmer
    assert b"peripheral_blood/qpcr/total" in plots.kinetics_svg(population[0])


def infused_population(*events: CloudEvent) -> list[Course]:
    return infused_courses(courses(enumerate(events, start=1)))
