"""The adverse-event record: derived windows, grading with reasons, DLT adjudication."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.adverse_events import errors, grading
from services.adverse_events.dlt import DltCriterion
from services.adverse_events.domain import (
    AdverseEvent,
    Infused,
    Relatedness,
    Seriousness,
    StudyRules,
    grading_of,
)
from shared.clinical import DayConvention
from shared.kernel.provenance import Attribution
from shared.study import study_definition
from tests.support import command

RULES = StudyRules.of(study_definition())  # the first study's
INFUSED = Infused(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), 2)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GRADE_4_CRS = grading.CrsInputs(
    Decimal("39.2"), False, grading.Hypotension.MULTIPLE_VASOPRESSORS, grading.Oxygen.LOW_FLOW
)
GRADE_1_CRS = grading.CrsInputs(
    Decimal("38.4"), False, grading.Hypotension.NONE, grading.Oxygen.NONE
)


def cmd() -> Attribution:
    return command(NOW)


def reported(day: int = 3, term: str = "Cytokine release syndrome") -> AdverseEvent:
    """Reported with its onset on study ``day`` (the infusion's date is day 0)."""
    onset = INFUSED.infused_at + timedelta(days=day, hours=1)
    return AdverseEvent.report(
        "S-001", term, "fever and hypotension", None, onset, INFUSED, cmd(), RULES
    )


@pytest.mark.parametrize(
    ("day", "emergent", "in_window"),
    [(0, True, True), (1, True, True), (28, True, True), (29, True, False), (90, True, False),
     (91, False, False)],
)  # fmt: skip
def test_report_derives_study_day_teae_and_dlt_window(
    day: int, emergent: bool, in_window: bool
) -> None:
    record = reported(day)
    assert (record.study_day, record.treatment_emergent, record.in_dlt_window) == (
        day,
        emergent,
        in_window,
    )


def test_report_names_the_study_s_convention_and_window_rules() -> None:
    record = reported(28)
    assert record.study_day_convention is DayConvention.INFUSION_DAY_0
    reported_event: Any = record.collect_events()[0]
    assert reported_event.rule_version == "NCT05030779/def-1/windows/2"


def reported_before_conventions(day_1: int, term: str) -> AdverseEvent:
    """A report as stored by windows/1: its day counted CDISC, no convention named."""
    onset = INFUSED.infused_at + timedelta(days=day_1 - 1, hours=1)
    return AdverseEvent(
        subject_id="S-001", term=term, verbatim="as reported", meddra_code=None,
        onset_at=onset, study_day=day_1, treatment_emergent=True, in_dlt_window=True,
        dose_level=2, rule_version="NCT05030779-windows/1", provenance=cmd().provenance,
    )  # fmt: skip


def test_a_report_stored_before_conventions_keeps_its_cdisc_day() -> None:
    record = reported_before_conventions(29, "Fatigue")
    assert record.study_day == 29
    assert record.study_day_convention is DayConvention.INFUSION_DAY_1


def test_an_onset_before_the_infusion_is_not_treatment_emergent() -> None:
    onset = INFUSED.infused_at - timedelta(hours=2)
    record = AdverseEvent.report("S-001", "Fatigue", "tired", None, onset, INFUSED, cmd(), RULES)
    assert (record.treatment_emergent, record.in_dlt_window) == (False, False)


def test_crs_is_graded_from_its_components() -> None:
    record = reported()
    record.grade(grading_of(record.term, None, None, crs=GRADE_4_CRS), cmd())
    assert record.grading is not None
    assert (record.grading.scale, record.grading.grade, record.grading.computed_grade) == (
        "ASTCT-CRS",
        4,
        4,
    )


def test_a_manual_grade_that_differs_from_the_computed_one_needs_a_reason() -> None:
    with pytest.raises(errors.ReasonRequired):
        grading_of("Cytokine release syndrome", 2, None, crs=GRADE_1_CRS)
    grading = grading_of(
        "Cytokine release syndrome", 2, "hypotension charted late", crs=GRADE_1_CRS
    )
    assert (grading.grade, grading.computed_grade) == (2, 1)


GRADE_2_ICANS = grading.IcansInputs(
    5, grading.Consciousness.AWAKE, grading.Seizure.NONE, grading.Motor.NONE, grading.RaisedIcp.NONE
)


@pytest.mark.parametrize(
    ("term", "grade", "crs", "icans", "scale"),
    [
        ("Headache", None, GRADE_4_CRS, None, "CTCAE"),  # a headache is not CRS
        ("Encephalopathy", None, None, GRADE_2_ICANS, "CTCAE"),
        ("Cytokine release syndrome", 3, None, None, "ASTCT-CRS"),  # CRS by its components
        ("cytokine  release syndrome", 2, None, None, "ASTCT-CRS"),
        ("Cytokine release syndrome", None, None, GRADE_2_ICANS, "ASTCT-CRS"),
        ("ICANS", 2, None, None, "ASTCT-ICANS"),
        (
            "Immune effector cell-associated neurotoxicity syndrome",
            None,
            GRADE_4_CRS,
            None,
            "ASTCT-ICANS",
        ),
    ],
)
def test_a_term_is_graded_only_by_its_own_scale(
    term: str,
    grade: int | None,
    crs: grading.CrsInputs | None,
    icans: grading.IcansInputs | None,
    scale: str,
) -> None:
    with pytest.raises(errors.ScaleNotForTerm) as refused:
        grading_of(term, grade, None, crs=crs, icans=icans)
    assert refused.value.code == "scale_not_for_term"
    assert refused.value.details["scale"] == scale


def test_crs_and_icans_terms_graded_by_their_components_keep_their_scale() -> None:
    assert grading_of("CRS", None, None, crs=GRADE_1_CRS).scale == "ASTCT-CRS"
    icans = grading_of("ICANS", None, None, icans=GRADE_2_ICANS)
    assert (icans.scale, icans.grade) == ("ASTCT-ICANS", 2)
    assert grading_of("Headache", 2, None).scale == "CTCAE"


def test_a_ctcae_grade_must_be_allowed_for_its_term() -> None:
    with pytest.raises(errors.GradeNotAllowed):
        grading_of("Alopecia", 3, None)


@pytest.mark.part11("11.10(e)")
def test_a_regrade_without_a_reason_is_refused() -> None:
    record = reported()
    record.grade(grading_of(record.term, None, None, crs=GRADE_1_CRS), cmd())
    with pytest.raises(errors.ReasonRequired):
        record.regrade(grading_of(record.term, None, None, crs=GRADE_4_CRS), "  ", cmd())


def test_grade_4_crs_in_the_window_can_be_a_dlt() -> None:
    record = reported(day=5)
    record.grade(grading_of(record.term, None, None, crs=GRADE_4_CRS), cmd())
    record.adjudicate_dlt(True, DltCriterion.CRS_GRADE_4, "vasopressors x2", cmd(), RULES)
    assert record.dlt is True


def test_no_dlt_outside_the_window() -> None:
    record = reported(day=29)
    record.grade(grading_of(record.term, None, None, crs=GRADE_4_CRS), cmd())
    with pytest.raises(errors.NotADlt):
        record.adjudicate_dlt(True, DltCriterion.CRS_GRADE_4, "late", cmd(), RULES)


def test_no_dlt_for_a_criterion_the_record_does_not_bear_out() -> None:
    record = reported()
    record.grade(grading_of(record.term, None, None, crs=GRADE_1_CRS), cmd())
    with pytest.raises(errors.NotADlt):
        record.adjudicate_dlt(True, DltCriterion.CRS_GRADE_4, "wishful", cmd(), RULES)


def grade_4_neutropenia(onset_day: int = 10) -> AdverseEvent:
    record = reported(day=onset_day, term="Neutrophil count decreased")
    record.grade(grading_of(record.term, 4, None), cmd())
    return record


def test_grade_4_cytopenia_resolved_by_day_28_is_not_beyond_day_28() -> None:
    record = grade_4_neutropenia()
    record.resolve(INFUSED.infused_at.date() + timedelta(days=14), "recovered", cmd())  # day 14
    with pytest.raises(errors.NotADlt) as refused:
        record.adjudicate_dlt(True, DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28, "x", cmd(), RULES)
    assert refused.value.details["last_study_day_present"] == 14


@pytest.mark.parametrize(("resolved_day", "dlt"), [(28, False), (29, True), (None, True)])
def test_grade_4_cytopenia_beyond_day_28_when_the_record_shows_it(
    resolved_day: int | None, dlt: bool
) -> None:
    record = grade_4_neutropenia()
    if resolved_day is not None:
        ended = INFUSED.infused_at.date() + timedelta(days=resolved_day)
        record.resolve(ended, "recovered", cmd())
    criterion = DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28
    if dlt:  # unresolved on NOW, months after the infusion: still present beyond day 28
        record.adjudicate_dlt(True, criterion, "ANC < 500 on day 29", cmd(), RULES)
        assert record.dlt is True
    else:
        with pytest.raises(errors.NotADlt):
            record.adjudicate_dlt(True, criterion, "ANC < 500", cmd(), RULES)


def test_unresolved_cytopenia_is_not_yet_beyond_day_28_while_day_28_lasts() -> None:
    record = grade_4_neutropenia()
    day_28 = command(INFUSED.infused_at + timedelta(days=28, hours=5))  # infusion + 28 days
    with pytest.raises(errors.NotADlt):
        record.adjudicate_dlt(
            True, DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28, "x", day_28, RULES
        )


def test_unresolved_cytopenia_is_beyond_day_28_once_day_29_begins() -> None:
    record = grade_4_neutropenia()
    day_29 = command(datetime.combine(INFUSED.infused_at.date() + timedelta(days=29),
                                      datetime.min.time(), tzinfo=UTC))  # fmt: skip
    record.adjudicate_dlt(
        True, DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28, "ANC < 500", day_29, RULES
    )
    assert record.dlt is True


def test_a_cdisc_day_29_stored_before_conventions_is_day_28_of_the_study() -> None:
    """Resolved on the infusion's date + 28 days: CDISC day 29, the study's day 28, so
    the cytopenia did not last beyond day 28 by the study's count."""
    record = reported_before_conventions(10, "Neutrophil count decreased")
    record.grade(grading_of(record.term, 4, None), cmd())
    record.resolve(INFUSED.infused_at.date() + timedelta(days=28), "recovered", cmd())
    with pytest.raises(errors.NotADlt) as refused:
        record.adjudicate_dlt(True, DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28, "x", cmd(), RULES)
    assert refused.value.details["onset_study_day"] == 9
    assert refused.value.details["last_study_day_present"] == 28


GRADE_3_CRS = grading.CrsInputs(
    Decimal("39.0"), False, grading.Hypotension.ONE_VASOPRESSOR, grading.Oxygen.NONE
)


@pytest.mark.parametrize(("resolved_after_days", "dlt"), [(2, False), (3, True), (None, True)])
def test_grade_3_crs_not_improving_within_72_hours_when_the_record_shows_it(
    resolved_after_days: int | None, dlt: bool
) -> None:
    record = reported(day=2)
    record.grade(grading_of(record.term, None, None, crs=GRADE_3_CRS), cmd())
    if resolved_after_days is not None:
        ended = record.onset_at.date() + timedelta(days=resolved_after_days)
        record.resolve(ended, "recovered", cmd())
    criterion = DltCriterion.CRS_GRADE_3_NOT_IMPROVING_72H
    if dlt:
        record.adjudicate_dlt(True, criterion, "on vasopressors beyond 72 h", cmd(), RULES)
        assert record.dlt is True
    else:  # resolved two days after onset: it improved within 72 h
        with pytest.raises(errors.NotADlt):
            record.adjudicate_dlt(True, criterion, "wishful", cmd(), RULES)


def test_grade_3_crs_cannot_be_called_not_improving_before_72_hours_have_passed() -> None:
    record = reported(day=2)
    record.grade(grading_of(record.term, None, None, crs=GRADE_3_CRS), cmd())
    early = command(record.onset_at + timedelta(hours=71))
    with pytest.raises(errors.NotADlt):
        record.adjudicate_dlt(True, DltCriterion.CRS_GRADE_3_NOT_IMPROVING_72H, "x", early, RULES)
    later = command(record.onset_at + timedelta(hours=72))
    record.adjudicate_dlt(True, DltCriterion.CRS_GRADE_3_NOT_IMPROVING_72H, "72 h", later, RULES)


def test_adjudication_needs_a_grade_and_causality_needs_a_grade() -> None:
    with pytest.raises(errors.NotGradedYet):
        reported().adjudicate_dlt(False, None, "mild", cmd(), RULES)
    with pytest.raises(errors.NotGradedYet):
        reported().assess_causality(Relatedness.PROBABLE, Relatedness.UNLIKELY, cmd())


def test_a_resolved_event_is_not_changed_any_more() -> None:
    record = reported()
    record.resolve(date(2026, 7, 10), "recovered", cmd())
    with pytest.raises(errors.EventResolved):
        record.grade(grading_of(record.term, None, None, crs=GRADE_1_CRS), cmd())


NO_DEATH = Seriousness(False, False, True, False, False, False)
DEATH = Seriousness(True, False, False, False, False, False)


def test_grade_5_is_refused_while_the_record_shows_no_death() -> None:
    record = reported(term="Sepsis")
    with pytest.raises(errors.GradeFiveWithoutDeath) as refused:
        record.grade(grading_of(record.term, 5, None), cmd())
    assert (refused.value.code, refused.value.details["death_recorded"]) == (
        "grade_5_without_death", False
    )  # fmt: skip
    record.assess_seriousness(NO_DEATH, cmd())
    with pytest.raises(errors.GradeFiveWithoutDeath):
        record.grade(grading_of(record.term, 5, None), cmd())
    assert record.grading is None


def test_grade_5_is_recorded_once_the_seriousness_records_the_death() -> None:
    record = reported(term="Sepsis")
    record.assess_seriousness(DEATH, cmd())
    record.grade(grading_of(record.term, 5, None), cmd())
    assert record.grading is not None and record.grading.grade == 5
    assert record.grading.rule_version == "NCT05030779-grading/3"


def test_a_regrade_to_5_needs_the_death_too() -> None:
    record = reported(term="Sepsis")
    record.grade(grading_of(record.term, 4, None), cmd())
    with pytest.raises(errors.GradeFiveWithoutDeath):
        record.regrade(grading_of(record.term, 5, None), "died", cmd())
    record.assess_seriousness(DEATH, cmd())
    record.regrade(grading_of(record.term, 5, None), "died of sepsis", cmd())
    assert record.grading is not None and record.grading.grade == 5


def test_a_grade_5_event_keeps_its_death_in_the_seriousness() -> None:
    record = reported(term="Sepsis")
    record.assess_seriousness(DEATH, cmd())
    record.grade(grading_of(record.term, 5, None), cmd())
    with pytest.raises(errors.GradeFiveWithoutDeath):
        record.assess_seriousness(NO_DEATH, cmd())
    assert record.seriousness == DEATH


def test_crs_grade_5_from_its_components_records_the_death_itself() -> None:
    record = reported()
    fatal = replace(GRADE_4_CRS, death_from_crs=True)
    record.grade(grading_of(record.term, None, None, crs=fatal), cmd())
    assert record.grading is not None and record.grading.grade == 5


def test_a_manual_crs_grade_5_without_a_death_is_refused() -> None:
    record = reported()
    with pytest.raises(errors.GradeFiveWithoutDeath):
        record.grade(grading_of(record.term, 5, "worse than it reads", crs=GRADE_4_CRS), cmd())
