"""Endpoint definitions at their boundaries, from hand-made ledger entries (no I/O)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.adverse_events.grading import Scale
from services.projections import plots
from services.projections.clinical_endpoints import (
    CRS_SCALE,
    DEFINITIONS,
    ICANS_SCALE,
    Course,
    EndpointRules,
    TrialHistory,
    courses,
    definition_of,
    endpoint_rules,
    endpoints_of,
    trial_endpoints,
)
from services.projections.clinical_endpoints import infused as infused_courses
from services.projections.views import subject_state
from shared.clinical import STUDY, DayConvention
from shared.kernel.envelope import CloudEvent
from shared.study import DEFAULT_STUDY_ID
from tests.support import NOW

ROOT = Path(__file__).resolve().parents[2]
FIRST = endpoint_rules(DEFAULT_STUDY_ID)  # the first study's: week 12, response to day 90

DAY0 = NOW - timedelta(days=200)  # the infusion: the study's day 0, CDISC day 1


def entry(subject: str, type_: str, at: datetime, **data: Any) -> CloudEvent:
    return CloudEvent(
        id=uuid.uuid4(), source="/trial-ledger/tests", type=type_, subject=subject, time=at,
        recordedtime=at, sequence="1", correlationid="c", data={"record_id": subject, **data},
    )  # fmt: skip


def infused(subject: str) -> CloudEvent:
    return entry(subject, "CarTInfused.v1", DAY0, started_at=DAY0.isoformat(), dose_level=2)


def published_day(days: int) -> int:
    """The study day the v1 contracts publish for infusion + ``days`` days (CDISC)."""
    return DayConvention.INFUSION_DAY_1.day(days)


def response(subject: str, day: int, category: str) -> CloudEvent:
    """A response on the study's ``day`` (infusion + ``day`` days), published as the v1
    contract counts it (CDISC: one more)."""
    at = DAY0 + timedelta(days=day)
    doris, lldas = category == "complete", category in ("complete", "partial")
    return entry(subject, "RemissionAssessed.v1", at, study_day=published_day(day),
                 response=category, doris=doris, lldas=lldas)  # fmt: skip


def figures(*events: CloudEvent) -> dict[str, Any]:
    return trial_endpoints(enumerate(events, start=1), FIRST)


def test_every_figure_has_its_definition_and_every_definition_a_figure() -> None:
    """The console shows each figure beside its definition: a figure added without one,
    or a definition left after its figure went, fails here."""
    assert set(DEFINITIONS) == set(figures(infused("S-1")))
    documented = (ROOT / "docs" / "endpoints.md").read_text()
    for name in set(DEFINITIONS) - {"version", "study_day_convention", "subjects_infused"}:
        assert f"`{name}" in documented, f"{name} is not defined in docs/endpoints.md"


def test_endpoints_name_their_version_and_study_day_convention() -> None:
    e = figures(infused("A"))
    assert (e["version"], e["study_day_convention"]) == (
        "NCT05030779/def-1/endpoints/2", "infusion_day_0"
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


SECOND = endpoint_rules("SYN-CART-2")  # week 8 (day 56 +/- 5), response to day 84, control from 21


def test_a_second_study_s_ledger_is_read_by_its_own_definition() -> None:
    e = trial_endpoints(enumerate([infused("A")], start=1), SECOND)
    assert e["version"] == "SYN-CART-2/def-1/endpoints/2"
    assert list(e["remission_at_visit"]) == list(e["sledai_2k_change_from_baseline"]) == ["week 8"]
    assert e["remission_at_visit"]["week 8"]["windows"]["A"] == {
        "first_study_day": 51, "target_study_day": 56, "last_study_day": 61,
    }  # fmt: skip


def test_each_definition_names_the_days_its_study_s_figure_was_read_by() -> None:
    """The console shows "by day 90" beside NCT05030779's response rate, "by day 84"
    beside SYN-CART-2's: the day the figure used, not a field name."""
    for rules, last, first in ((None, 90, 28), (SECOND, 84, 21)):
        e = figures(infused("A")) if rules is None else trial_endpoints([(1, infused("A"))], rules)
        orr, dcr = (
            definition_of(name, e[name])
            for name in ("objective_response_rate_3_months", "disease_control_rate_from_day_28")
        )
        assert f"remission by day {last} /" in orr and f"from day {first} is" in dcr
        assert "{" not in orr + dcr
    assert definition_of("subjects_infused", 1) == DEFINITIONS["subjects_infused"]


@pytest.mark.parametrize(("rules", "responders"), [(FIRST, ["A"]), (SECOND, [])])
def test_objective_response_ends_on_the_study_s_last_response_day(
    rules: EndpointRules, responders: list[str]
) -> None:
    events = [infused("A"), response("A", 90, "partial")]
    e = trial_endpoints(enumerate(events, start=1), rules)
    assert e["objective_response_rate_3_months"]["subjects"] == responders
    assert e["objective_response_rate_3_months"]["last_study_day"] == (
        84 if rules is SECOND else 90
    )


@pytest.mark.parametrize(("rules", "controlled"), [(FIRST, []), (SECOND, ["A"])])
def test_disease_control_starts_on_the_study_s_first_day(
    rules: EndpointRules, controlled: list[str]
) -> None:
    events = [infused("A"), response("A", 21, "stable"), response("A", 28, "progression")]
    e = trial_endpoints(enumerate(events, start=1), rules)
    assert e["disease_control_rate_from_day_28"]["subjects"] == controlled
    assert e["disease_control_rate_from_day_28"]["first_study_day"] == (
        21 if rules is SECOND else 28
    )


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
    series = trial_endpoints(enumerate([infused("A"), kinetics], start=1), FIRST)["time_courses"][
        "A"
    ]
    point = series["car_t_kinetics"]["peripheral_blood/qpcr/total"]
    assert (point["tmax_study_day"], point["points"][0]["study_day"]) == (7, 7)
    assert course.kinetics[0].study_day == 7


def infused_population(*events: CloudEvent) -> list[Course]:
    return infused_courses(courses(enumerate(events, start=1), FIRST))


def test_the_subject_view_shows_the_study_s_days() -> None:
    """A remission published on CDISC day 29 (infusion + 28 days) is the study's day 28."""
    published = entry("A", "RemissionAssessed.v1", DAY0 + timedelta(days=28), study_day=29,
                      response="complete", rule_version="NCT05030779-sle-response/1")  # fmt: skip
    state = subject_state(None, published, 1, STUDY)
    assert state["response"]["study_day"] == 28
    # a study numbering the infusion's date day 1 (CDISC) keeps day 29: the view's study
    # days are its own study's, not the first study's
    cdisc = dataclasses.replace(STUDY, name="CDISC-DAYS", convention=DayConvention.INFUSION_DAY_1)
    assert subject_state(None, published, 1, cdisc)["response"]["study_day"] == 29


def after(days: int) -> datetime:
    return DAY0 + timedelta(days=days)


def graded(subject: str, record: str, scale: str, grade: int, regrade: bool = False) -> CloudEvent:
    kind = "AdverseEventRegraded.v1" if regrade else "AdverseEventGraded.v1"
    return entry(subject, kind, after(2), record_id=record, scale=scale, grade=grade)


def assessed(subject: str, days: int, doris: bool, lldas: bool) -> CloudEvent:
    category = "complete" if doris else "partial" if lldas else "stable"
    return entry(subject, "RemissionAssessed.v1", after(days), study_day=published_day(days),
                 response=category, doris=doris, lldas=lldas)  # fmt: skip


def sledai(subject: str, days: int, score: int) -> CloudEvent:
    return entry(subject, "DiseaseActivityAssessed.v1", after(days), study_day=published_day(days),
                 sledai_2k=score)  # fmt: skip


def test_the_scales_read_are_the_ones_the_adverse_events_service_records() -> None:
    assert (Scale.ASTCT_CRS.value, Scale.ASTCT_ICANS.value) == (CRS_SCALE, ICANS_SCALE)


def test_crs_counts_each_subject_once_at_the_worst_latest_grade() -> None:
    e = figures(
        infused("A"), infused("B"), infused("C"),
        graded("A", "a1", CRS_SCALE, 1), graded("A", "a2", CRS_SCALE, 2),  # worst: 2
        graded("B", "b1", CRS_SCALE, 3), graded("B", "b1", CRS_SCALE, 1, regrade=True),
        graded("C", "c1", "CTCAE", 3),  # not CRS
    )  # fmt: skip
    crs = e["crs_incidence_by_maximum_grade"]
    grades = {g: (f["numerator"], f["subjects"]) for g, f in crs["by_maximum_grade"].items()}
    assert grades == {"0": (1, ["C"]), "1": (1, ["B"]), "2": (1, ["A"]), "3": (0, []),
                      "4": (0, []), "5": (0, [])}  # fmt: skip
    assert (crs["any_grade"]["numerator"], crs["any_grade"]["rate"]) == (2, "0.667")
    assert e["icans_incidence_by_maximum_grade"]["by_maximum_grade"]["0"]["numerator"] == 3


def test_week_12_reads_the_response_nearest_day_84_within_7_days() -> None:
    e = figures(
        infused("A"), infused("B"), infused("C"), infused("D"),
        assessed("A", 77, True, True),  # first day of the window
        assessed("B", 91, False, True),  # last day of the window
        assessed("C", 76, True, True), assessed("C", 92, True, True),  # both outside
        assessed("D", 80, False, False), assessed("D", 85, True, True),  # 85 is nearer
    )  # fmt: skip
    week_12 = e["remission_at_visit"]["week 12"]
    assert week_12["doris"]["subjects"] == ["A", "D"]
    assert (week_12["lldas"]["subjects"], week_12["lldas"]["rate"]) == (["A", "B", "D"], "0.750")
    window = week_12["windows"]["A"]
    assert window["last_study_day"] - window["first_study_day"] == 14


def test_time_to_first_remission_is_censored_at_the_last_assessment() -> None:
    e = figures(
        infused("A"), infused("B"), infused("C"),
        assessed("A", 28, False, False), assessed("A", 56, False, True),  # remission at 56
        assessed("B", 28, True, True),  # remission at 28
        assessed("C", 90, False, False),  # censored at 90
    )  # fmt: skip
    ttr = e["time_to_first_remission"]
    assert [(s["subject_id"], s["days"], s["event"]) for s in ttr["subjects"]] == [
        ("A", 56, True), ("B", 28, True), ("C", 90, False)]  # fmt: skip
    assert ttr["median_days"] == 56  # S(28) = 2/3, S(56) = 1/3


def test_sledai_change_is_from_the_last_visit_before_the_infusion() -> None:
    e = figures(
        infused("A"), infused("B"), infused("C"),
        sledai("A", -30, 20), sledai("A", -2, 12), sledai("A", 84, 2),  # 2 - 12 = -10
        sledai("B", -1, 9), sledai("B", 60, 4), sledai("B", 88, 5),  # 5 - 9 = -4
        sledai("C", -1, 8), sledai("C", 100, 0),  # no visit in the window
    )  # fmt: skip
    change = e["sledai_2k_change_from_baseline"]["week 12"]
    rows = {
        r["subject_id"]: (r["baseline"], r["at_visit"], r["change"]) for r in change["subjects"]
    }
    assert rows == {"A": (12, 2, -10), "B": (9, 5, -4), "C": (8, None, None)}
    assert (change["median_change"], change["evaluable"]) == ("-7", ["A", "B"])


def test_a_visit_at_the_infusions_start_is_not_the_baseline() -> None:
    e = figures(infused("A"), sledai("A", -3, 12), sledai("A", 0, 6), sledai("A", 84, 4))
    [row] = e["sledai_2k_change_from_baseline"]["week 12"]["subjects"]
    assert (row["baseline"], row["change"]) == (12, -8)


def test_a_history_advanced_in_steps_gives_what_a_replay_of_every_entry_gives() -> None:
    entries = list(enumerate([
        infused("A"), sledai("A", -2, 10), graded("A", "ae-1", CRS_SCALE, 2), infused("B"),
        response("A", 28, "partial"), graded("A", "ae-1", CRS_SCALE, 3, regrade=True),
        sledai("B", 30, 4), assessed("B", 84, True, True), response("B", 90, "complete"),
    ], start=1))  # fmt: skip
    replayed = TrialHistory.of(entries, FIRST)
    for cut in range(len(entries) + 1):
        history = TrialHistory.of(entries[:cut], FIRST)
        history.advance(entries[cut:])
        assert endpoints_of(history.population, FIRST) == trial_endpoints(entries, FIRST)
        assert (history.position, history.milestones) == (9, replayed.milestones)


def test_a_history_takes_each_entry_once_in_position_order() -> None:
    history = TrialHistory.of([(1, infused("A")), (2, infused("B"))], FIRST)
    with pytest.raises(ValueError, match="entry 2 is not after 2"):
        history.advance([(2, infused("C"))])
    assert set(history.courses) == {"A", "B"}
