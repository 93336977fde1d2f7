"""Sequencing, enrollment, withdrawal and correction rules of the subject record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.enrollment import errors
from services.enrollment.domain import DoseLevel, Subject, SubjectStatus, subject_record_id
from services.enrollment.rules import Observation
from shared.study import study_definition
from tests.support import CONSENT_DAY, NOW, SCREENING_DAY, command, consent, screening

STUDY = study_definition()  # the first study's: every call names the study it acts in


def registered() -> Subject:
    return Subject.register("S-001", "ZJU-1", command(), None, STUDY)


def consented() -> Subject:
    subject = registered()
    subject.sign_consent(consent(), command(), None)
    return subject


def screened(**changes: Observation) -> Subject:
    subject = consented()
    subject.record_screening(screening(**changes), command(), None, STUDY)
    return subject


def eligible() -> Subject:
    subject = screened()
    subject.decide_eligibility(command(), None, STUDY)
    return subject


def event_names(subject: Subject) -> list[str]:
    return [type(e).__name__ for e in subject.collect_events()]


def test_subject_record_id_is_derived_from_the_subject_id() -> None:
    assert registered().id == subject_record_id("S-001", STUDY)


@pytest.mark.parametrize("bad_id", ["", "s-001", "S 001", "S/001", "-S1", "S" * 33])
def test_refuses_malformed_subject_id(bad_id: str) -> None:
    with pytest.raises(errors.InvalidSubjectId):
        Subject.register(bad_id, "ZJU-1", command(), None, STUDY)


@pytest.mark.part11("11.10(f)")
def test_refuses_screening_before_consent() -> None:
    subject = registered()
    with pytest.raises(errors.ConsentRequired):
        subject.record_screening(screening(), command(), None, STUDY)
    assert event_names(subject) == ["SubjectRegistered"]


def test_refuses_second_consent() -> None:
    with pytest.raises(errors.ConsentAlreadyRecorded):
        consented().sign_consent(consent(), command(), None)


def test_refuses_consent_dated_in_the_future() -> None:
    with pytest.raises(errors.DateInFuture):
        registered().sign_consent(consent(NOW.date() + timedelta(days=1)), command(), None)


def test_refuses_clinical_time_in_the_future() -> None:
    with pytest.raises(errors.DateInFuture):
        registered().sign_consent(consent(), command(), NOW + timedelta(seconds=1))


def test_refuses_observation_taken_before_consent() -> None:
    early = Observation(Decimal(180), CONSENT_DAY - timedelta(days=1), "10^9/L")
    with pytest.raises(errors.DateOutOfOrder) as refused:
        consented().record_screening(screening(platelets=early), command(), None, STUDY)
    assert refused.value.details["criterion"] == "platelets"


def test_refuses_observation_after_the_screening_date() -> None:
    late = Observation(Decimal(180), SCREENING_DAY + timedelta(days=1), "10^9/L")
    with pytest.raises(errors.DateOutOfOrder):
        consented().record_screening(screening(platelets=late), command(), None, STUDY)


def test_refuses_screening_missing_a_criterion() -> None:
    incomplete = screening()
    del incomplete.observations["hiv_infection"]  # type: ignore[attr-defined]
    with pytest.raises(errors.MissingCriteria) as refused:
        consented().record_screening(incomplete, command(), None, STUDY)
    assert refused.value.details["criteria"] == ["hiv_infection"]


def test_refuses_unknown_criterion() -> None:
    extra = screening(shoe_size=Observation(Decimal(42), SCREENING_DAY, "EU"))
    with pytest.raises(errors.UnknownCriterion):
        consented().record_screening(extra, command(), None, STUDY)


def test_refuses_second_screening() -> None:
    with pytest.raises(errors.ScreeningAlreadyRecorded):
        screened().record_screening(screening(), command(), None, STUDY)


@pytest.mark.part11("11.10(f)")
def test_refuses_eligibility_decision_before_screening() -> None:
    with pytest.raises(errors.ScreeningRequired):
        consented().decide_eligibility(command(), None, STUDY)


def test_refuses_eligibility_decision_before_consent() -> None:
    with pytest.raises(errors.ConsentRequired):
        registered().decide_eligibility(command(), None, STUDY)


def test_eligible_screening_confirms_eligibility() -> None:
    subject = eligible()
    assert subject.status is SubjectStatus.ELIGIBLE
    assert event_names(subject)[-1] == "EligibilityConfirmed"


def test_ineligible_screening_is_a_screen_failure_naming_the_criteria() -> None:
    subject = screened(creatinine=Observation(Decimal(300), SCREENING_DAY, "umol/L"))
    subject.decide_eligibility(command(), None, STUDY)
    assert subject.status is SubjectStatus.SCREEN_FAILED
    assert subject.assessment is not None
    assert subject.assessment.failed_criteria == ("creatinine",)
    assert event_names(subject)[-1] == "ScreenFailed"


def test_refuses_second_eligibility_decision() -> None:
    with pytest.raises(errors.EligibilityAlreadyDecided):
        eligible().decide_eligibility(command(), None, STUDY)


def test_enrols_eligible_subject_at_a_dose_level() -> None:
    subject = eligible()
    subject.enrol(3, 3, command(), None, STUDY)
    assert subject.status is SubjectStatus.ENROLLED
    assert subject.dose_level is DoseLevel.THREE


@pytest.mark.parametrize("level", [0, 5, -1])
def test_refuses_dose_level_outside_one_to_four(level: int) -> None:
    with pytest.raises(errors.InvalidDoseLevel):
        eligible().enrol(level, 1, command(), None, STUDY)


def test_refuses_enrollment_of_screen_failed_subject() -> None:
    subject = screened(hiv_infection=Observation(True, SCREENING_DAY))
    subject.decide_eligibility(command(), None, STUDY)
    with pytest.raises(errors.NotEligible):
        subject.enrol(1, 1, command(), None, STUDY)


@pytest.mark.part11("11.10(f)")
def test_refuses_enrollment_before_eligibility_decision() -> None:
    with pytest.raises(errors.NotEligible):
        screened().enrol(1, 1, command(), None, STUDY)


def test_refuses_second_enrollment() -> None:
    subject = eligible()
    subject.enrol(1, 1, command(), None, STUDY)
    with pytest.raises(errors.AlreadyEnrolled):
        subject.enrol(2, 2, command(), None, STUDY)


def test_withdrawal_needs_a_reason() -> None:
    with pytest.raises(errors.ReasonRequired):
        eligible().withdraw("   ", command(), None)


def withdrawn() -> Subject:
    subject = registered()
    subject.withdraw("subject moved away", command(), None)
    return subject


def dead() -> Subject:
    subject = eligible()
    subject.record_death("sepsis", None, command(), None)
    return subject


# Every command a subject's record may be given after it has ended, by its name.
LATE_COMMANDS: dict[str, Callable[[Subject], None]] = {
    "consent": lambda s: s.sign_consent(consent(), command(), None),
    "screening": lambda s: s.record_screening(screening(), command(), None, STUDY),
    "eligibility": lambda s: s.decide_eligibility(command(), None, STUDY),
    "enrollment": lambda s: s.enrol(1, 1, command(), None, STUDY),
    "withdrawal": lambda s: s.withdraw("again", command(), None),
    "death": lambda s: s.record_death("again", None, command(), None),
    "correction": lambda s: s.correct("consent.form_version", "ICF v3", "typo", command(), STUDY),
}
# After a withdrawal only a death is still recorded (the test below), after a death nothing.
AFTER_WITHDRAWAL = ("consent", "screening", "eligibility", "enrollment", "withdrawal", "correction")
AFTER_DEATH = ("withdrawal", "death", "correction")


@pytest.mark.parametrize(
    ("ended", "late", "refusal"),
    [
        *[
            pytest.param(withdrawn, name, errors.SubjectWithdrawn, id=f"{name}-after-withdrawal")
            for name in AFTER_WITHDRAWAL
        ],
        *[
            pytest.param(dead, name, errors.SubjectDied, id=f"{name}-after-death")
            for name in AFTER_DEATH
        ],
    ],
)
@pytest.mark.part11("11.10(f)")
def test_nothing_is_recorded_after_withdrawal_or_death(
    ended: Callable[[], Subject], late: str, refusal: type[Exception]
) -> None:
    subject = ended()
    subject.collect_events()
    with pytest.raises(refusal):
        LATE_COMMANDS[late](subject)
    assert subject.collect_events() == []


def test_death_is_recorded_with_its_cause_even_after_withdrawal() -> None:
    subject = eligible()
    subject.enrol(1, 1, command(), None, STUDY)
    subject.withdraw("withdrew consent", command(), None)
    subject.record_death("pneumonia", "ae-17", command(), NOW - timedelta(days=1))
    died: Any = subject.collect_events()[-1]
    assert type(died).__name__ == "SubjectDied"
    assert (died.cause, died.adverse_event_id) == ("pneumonia", "ae-17")
    assert died.occurred_at == NOW - timedelta(days=1)
    assert subject.status is SubjectStatus.DIED


def test_death_needs_a_cause_and_no_future_time() -> None:
    with pytest.raises(errors.ReasonRequired):
        eligible().record_death("  ", None, command(), None)
    with pytest.raises(errors.DateInFuture):
        eligible().record_death("sepsis", None, command(), NOW + timedelta(hours=1))


@pytest.mark.part11("11.10(e)")
def test_correction_keeps_old_value_new_value_and_reason() -> None:
    subject = screened()
    new = Observation(Decimal("0.9"), SCREENING_DAY, "mg/dL")
    subject.correct("screening.creatinine", new, "transcription error", command(), STUDY)
    corrected: Any = subject.collect_events()[-1]
    assert type(corrected).__name__ == "ValueCorrected"
    assert corrected.old_value == Observation(Decimal("0.8"), SCREENING_DAY, "mg/dL")
    assert corrected.new_value == new
    assert corrected.reason == "transcription error"
    assert subject.screening is not None
    assert subject.screening.observations["creatinine"] == new


def test_corrected_screening_value_decides_eligibility() -> None:
    subject = screened(platelets=Observation(Decimal(3), SCREENING_DAY, "10^9/L"))
    fixed = Observation(Decimal(300), SCREENING_DAY, "10^9/L")
    subject.correct("screening.platelets", fixed, "decimal point misplaced", command(), STUDY)
    subject.decide_eligibility(command(), None, STUDY)
    assert subject.status is SubjectStatus.ELIGIBLE


def test_correction_of_consent_form_version() -> None:
    subject = consented()
    subject.correct("consent.form_version", "ICF v2.2", "wrong version entered", command(), STUDY)
    assert subject.consent is not None and subject.consent.form_version == "ICF v2.2"


@pytest.mark.part11("11.10(e)")
def test_correction_needs_a_reason() -> None:
    with pytest.raises(errors.ReasonRequired):
        consented().correct("consent.form_version", "ICF v3", "", command(), STUDY)


def test_correction_must_change_the_value() -> None:
    with pytest.raises(errors.CorrectionChangesNothing):
        consented().correct("consent.form_version", "ICF v2.1", "no-op", command(), STUDY)


def test_refuses_correction_of_unknown_field() -> None:
    with pytest.raises(errors.UncorrectableField):
        consented().correct("subject.site_id", "ZJU-2", "moved", command(), STUDY)


def test_refuses_correction_that_breaks_a_rule() -> None:
    bad = Observation(Decimal(1), SCREENING_DAY, "furlongs")
    with pytest.raises(errors.InvalidObservation):
        screened().correct("screening.creatinine", bad, "typo", command(), STUDY)


def test_refuses_consent_date_correction_after_screening_observations() -> None:
    later = SCREENING_DAY + timedelta(days=1)
    with pytest.raises(errors.DateOutOfOrder):
        screened().correct("consent.signed_on", later, "wrong date", command(), STUDY)


def test_refuses_screening_correction_after_eligibility_decision() -> None:
    new = Observation(Decimal("0.9"), SCREENING_DAY, "mg/dL")
    with pytest.raises(errors.EligibilityAlreadyDecided):
        eligible().correct("screening.creatinine", new, "late fix", command(), STUDY)


def test_refuses_correction_of_screening_not_recorded() -> None:
    with pytest.raises(errors.ScreeningRequired):
        consented().correct("screening.screened_on", date(2026, 11, 3), "typo", command(), STUDY)


def test_refuses_a_dose_level_the_3_plus_3_state_has_not_opened() -> None:
    with pytest.raises(errors.DoseLevelNotAllowed) as refused:
        eligible().enrol(2, 1, command(), None, STUDY)
    assert refused.value.details == {"dose_level": 2, "allowed_level": 1}
