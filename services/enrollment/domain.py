"""The subject's enrollment record: rules of sequence, eligibility and correction.

Decide, then record: each public method checks its rules and derives the data, then
calls a private ``@event`` method that only changes state, so replaying history never
re-runs a check. No I/O here; the clock comes in as ``Command.now``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import NewType
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from services.enrollment import errors
from services.enrollment.rules import (
    STUDY,
    EligibilityAssessment,
    Observation,
    eligibility_rules,
    evaluate,
    normalise,
)
from shared.kernel.provenance import Attribution, Meaning, Provenance
from shared.kernel.records import SubjectRecord, named_in_its_study
from shared.study import StudyDefinition, acting_study

SubjectId = NewType("SubjectId", str)

# Signed steps and the meaning of their signature (Part 11 §11.50).
CONSENT_SIGNATURE = Meaning.RESPONSIBILITY  # the person who obtained consent answers for it
ELIGIBILITY_SIGNATURE = Meaning.APPROVAL  # the investigator approves the decision
SUBJECT_NAMESPACE = uuid5(NAMESPACE_URL, STUDY.urn("subject"))  # the first study's
_SUBJECT_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")


class SubjectStatus(StrEnum):
    REGISTERED = "registered"
    CONSENTED = "consented"
    SCREENED = "screened"
    ELIGIBLE = "eligible"
    SCREEN_FAILED = "screen_failed"
    ENROLLED = "enrolled"
    WITHDRAWN = "withdrawn"
    DIED = "died"


class DoseLevel(IntEnum):
    """The dose levels an enrollment can name (the published contract's 1-4); a study
    allows those its definition lists, at the doses it gives them (``StudyDefinition.dose``)."""

    ONE = 1
    TWO = 2
    THREE = 3
    FOUR = 4


def clinical_time(attribution: Attribution, occurred_at: datetime | None) -> datetime:
    """The clinical time given by the user, checked; the server time if none is given."""
    if occurred_at is None:
        return attribution.now
    if occurred_at > attribution.now:
        raise errors.DateInFuture(
            f"occurred_at {occurred_at.isoformat()} is later than the server clock",
            field="occurred_at",
            value=occurred_at.isoformat(),
        )
    return occurred_at


@dataclass(frozen=True)
class Consent:
    form_version: str
    signed_on: date
    obtained_by: str


@dataclass(frozen=True)
class Screening:
    screened_on: date
    observations: Mapping[str, Observation]


# Fields a correction may name; screening observations are "screening.<criterion code>".
CONSENT_FIELDS = ("consent.form_version", "consent.signed_on", "consent.obtained_by")
SCREENING_DATE_FIELD = "screening.screened_on"
CorrectedValue = str | date | Observation


def subject_record_id(subject_id: str, study: StudyDefinition) -> UUID:
    """The record id of a subject of ``study``: a name-based UUID in the study's namespace
    (the first study's ids as they always were), so the subject id is the natural key and
    the same subject id in two studies names two records."""
    namespace = SUBJECT_NAMESPACE if study is STUDY else uuid5(NAMESPACE_URL, study.urn("subject"))
    return uuid5(namespace, subject_id)


def check_subject_id(subject_id: str) -> SubjectId:
    if not _SUBJECT_ID.fullmatch(subject_id):
        raise errors.InvalidSubjectId(
            f"subject id {subject_id!r} must be 1-32 characters of A-Z, 0-9 and '-'",
            subject_id=subject_id,
        )
    return SubjectId(subject_id)


class Subject(SubjectRecord):
    """One subject's path from registration to enrollment or withdrawal."""

    create_id = staticmethod(named_in_its_study)

    @classmethod
    def register(
        cls,
        subject_id: str,
        site_id: str,
        attribution: Attribution,
        occurred_at: datetime | None,
        study: StudyDefinition,
    ) -> Subject:
        """Register a subject of ``study`` at a site under a checked subject id."""
        _check_acting_in(study, attribution)
        # the record's id in the study's namespace
        return cls._create(
            cls.SubjectRegistered,  # type: ignore[arg-type]  # (an @event class: it inits)
            id=subject_record_id(check_subject_id(subject_id), study),
            subject_id=subject_id,
            site_id=site_id,
            occurred_at=clinical_time(attribution, occurred_at),
            provenance=attribution.provenance,
        )

    @event("SubjectRegistered")
    def __init__(
        self, subject_id: str, site_id: str, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self.subject_id = subject_id
        self.site_id = site_id
        # the study registered in (a registration stored before studies were named: the first)
        self.study_id = acting_study(provenance)
        self.status = SubjectStatus.REGISTERED
        self.consent: Consent | None = None
        self.screening: Screening | None = None
        self.assessment: EligibilityAssessment | None = None
        self.dose_level: DoseLevel | None = None
        self.withdrawal_reason: str | None = None

    # --- consent ---------------------------------------------------------------------

    def sign_consent(
        self, consent: Consent, attribution: Attribution, occurred_at: datetime | None
    ) -> None:
        """Record informed consent: once, before anything else, not dated in the future."""
        self._check_not_withdrawn()
        if self.consent is not None:
            raise errors.ConsentAlreadyRecorded(
                f"subject {self.subject_id} already has consent recorded; correct it instead",
                subject_id=self.subject_id,
            )
        _check_not_future("signed_on", consent.signed_on, attribution)
        self._consent_signed(
            consent, clinical_time(attribution, occurred_at), attribution.provenance
        )

    @event("ConsentSigned")
    def _consent_signed(
        self, consent: Consent, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self.consent = consent
        self.status = SubjectStatus.CONSENTED

    # --- screening -------------------------------------------------------------------

    def record_screening(
        self,
        screening: Screening,
        attribution: Attribution,
        occurred_at: datetime | None,
        study: StudyDefinition,
    ) -> None:
        """Record the results of every criterion of ``study``, after consent and once only."""
        self._check_study(study)
        self._check_not_withdrawn()
        consent = self._require_consent()
        if self.screening is not None:
            raise errors.ScreeningAlreadyRecorded(
                f"subject {self.subject_id} already has screening recorded; correct it instead",
                subject_id=self.subject_id,
            )
        _check_complete(screening.observations, study)
        _check_screening(screening, consent, attribution, study)
        self._screening_recorded(
            screening, clinical_time(attribution, occurred_at), attribution.provenance
        )

    @event("ScreeningResultRecorded")
    def _screening_recorded(
        self, screening: Screening, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self.screening = screening
        self.status = SubjectStatus.SCREENED

    # --- eligibility -----------------------------------------------------------------

    def decide_eligibility(
        self, attribution: Attribution, occurred_at: datetime | None, study: StudyDefinition
    ) -> None:
        """Evaluate every criterion of ``study``: eligible confirms, otherwise a screen
        failure names why."""
        self._check_study(study)
        self._check_not_withdrawn()
        if self.assessment is not None:
            raise errors.EligibilityAlreadyDecided(
                f"eligibility of subject {self.subject_id} is already decided",
                subject_id=self.subject_id,
            )
        if self.screening is None:
            self._require_consent()
            raise errors.ScreeningRequired(
                f"subject {self.subject_id} has no screening results recorded",
                subject_id=self.subject_id,
            )
        assessment = evaluate(self.screening.screened_on, self.screening.observations, study)
        when = clinical_time(attribution, occurred_at)
        if assessment.eligible:
            self._eligibility_confirmed(assessment, when, attribution.provenance)
        else:
            self._screen_failed(assessment, when, attribution.provenance)

    @event("EligibilityConfirmed")
    def _eligibility_confirmed(
        self, assessment: EligibilityAssessment, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self.assessment = assessment
        self.status = SubjectStatus.ELIGIBLE

    @event("ScreenFailed")
    def _screen_failed(
        self, assessment: EligibilityAssessment, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self.assessment = assessment
        self.status = SubjectStatus.SCREEN_FAILED

    # --- enrollment and withdrawal ----------------------------------------------------

    def enrol(
        self,
        dose_level: int,
        allowed_level: int,
        attribution: Attribution,
        occurred_at: datetime | None,
        study: StudyDefinition,
    ) -> None:
        """Enrol an eligible subject, once, at a dose level of ``study`` that the 3+3 state
        allows now (``allowed_level``: the level the latest safety review opened, the
        study's first before any)."""
        self._check_study(study)
        self._check_not_withdrawn()
        if self.dose_level is not None:
            raise errors.AlreadyEnrolled(
                f"subject {self.subject_id} is already enrolled at dose level {self.dose_level}",
                subject_id=self.subject_id,
                dose_level=int(self.dose_level),
            )
        if self.status is not SubjectStatus.ELIGIBLE:
            raise errors.NotEligible(
                f"subject {self.subject_id} is {self.status}, not eligible",
                subject_id=self.subject_id,
                status=str(self.status),
            )
        level = _dose_level(dose_level, study)
        if level != allowed_level:
            raise errors.DoseLevelNotAllowed(
                f"dose level {level} is not open: the cohort being dosed is at level "
                f"{allowed_level}",
                dose_level=int(level),
                allowed_level=allowed_level,
            )
        self._enrolled(level, clinical_time(attribution, occurred_at), attribution.provenance)

    @event("SubjectEnrolled")
    def _enrolled(
        self, dose_level: DoseLevel, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self.dose_level = DoseLevel(dose_level)  # stored as a plain int
        self.status = SubjectStatus.ENROLLED

    def withdraw(self, reason: str, attribution: Attribution, occurred_at: datetime | None) -> None:
        """Withdraw the subject, with a reason; nothing is recorded afterwards."""
        self._check_not_withdrawn()
        self._withdrawn(
            _reason(reason, "withdrawal"),
            clinical_time(attribution, occurred_at),
            attribution.provenance,
        )

    @event("SubjectWithdrawn")
    def _withdrawn(self, reason: str, occurred_at: datetime, provenance: Provenance) -> None:
        self.withdrawal_reason = reason
        self.status = SubjectStatus.WITHDRAWN

    def record_death(
        self,
        cause: str,
        adverse_event_id: str | None,
        attribution: Attribution,
        occurred_at: datetime | None,
    ) -> None:
        """Record the subject's death (this service owns it: docs/enrollment.md).

        Vital status is followed after a withdrawal too, for overall survival; a death
        is recorded once, and nothing is recorded after it."""
        self._check_alive()
        when = clinical_time(attribution, occurred_at)
        self._died(_reason(cause, "death"), adverse_event_id, when, attribution.provenance)

    @event("SubjectDied")
    def _died(
        self,
        cause: str,
        adverse_event_id: str | None,
        occurred_at: datetime,
        provenance: Provenance,
    ) -> None:
        self.died_at = occurred_at
        self.status = SubjectStatus.DIED

    # --- corrections -----------------------------------------------------------------

    def correct(
        self,
        field: str,
        new_value: CorrectedValue,
        reason: str,
        attribution: Attribution,
        study: StudyDefinition,
    ) -> None:
        """Correct a recorded consent or screening value, keeping the old value and the why.

        Screening values are frozen once eligibility is decided: the decision was taken
        on them. The corrected record must still satisfy every recording rule.
        """
        self._check_study(study)
        self._check_not_withdrawn()
        reason = _reason(reason, "correction")
        old_value = self.recorded_value(field, study)
        if old_value == new_value:
            raise errors.CorrectionChangesNothing(
                f"{field} of subject {self.subject_id} is already {new_value!r}",
                subject_id=self.subject_id,
                field=field,
            )
        if field.startswith("screening.") and self.assessment is not None:
            raise errors.EligibilityAlreadyDecided(
                f"eligibility of subject {self.subject_id} is decided; its screening is frozen",
                subject_id=self.subject_id,
                field=field,
            )
        consent, screening = _corrected(self.consent, self.screening, field, new_value)
        assert consent is not None  # noqa: S101  (recorded_value required it)
        _check_not_future("signed_on", consent.signed_on, attribution)
        if screening is not None:
            _check_screening(screening, consent, attribution, study)
        self._value_corrected(
            field, old_value, new_value, reason, attribution.now, attribution.provenance
        )

    @event("ValueCorrected")
    def _value_corrected(
        self,
        field: str,
        old_value: CorrectedValue,
        new_value: CorrectedValue,
        reason: str,
        occurred_at: datetime,
        provenance: Provenance,
    ) -> None:
        self.consent, self.screening = _corrected(self.consent, self.screening, field, new_value)

    def recorded_value(self, field: str, study: StudyDefinition) -> CorrectedValue:
        """The current value of a correctable field (``study``'s criteria), or
        UncorrectableField."""
        criteria = eligibility_rules(study).by_code
        section, _, name = field.partition(".")
        if field in CONSENT_FIELDS:
            value: CorrectedValue = getattr(self._require_consent(), name)
            return value
        if section == "screening" and (field == SCREENING_DATE_FIELD or name in criteria):
            screening = self._require_screening()
            if field == SCREENING_DATE_FIELD:
                return screening.screened_on
            return screening.observations[name]
        raise errors.UncorrectableField(
            f"{field!r} cannot be corrected; correctable: consent.*, screening.screened_on, "
            "screening.<criterion>",
            field=field,
        )

    # --- guards ----------------------------------------------------------------------

    def _check_study(self, study: StudyDefinition) -> None:
        """Rules are the record's own study's: another's never decide on it."""
        if study.study_id != self.study_id:
            raise ValueError(
                f"subject {self.subject_id} is of study {self.study_id}, not {study.study_id}"
            )

    def _check_alive(self) -> None:
        if self.status is SubjectStatus.DIED:
            raise errors.SubjectDied(
                f"subject {self.subject_id} died on {self.died_at.date()}; nothing more is "
                "recorded",
                subject_id=self.subject_id,
            )

    def _check_not_withdrawn(self) -> None:
        self._check_alive()
        if self.status is SubjectStatus.WITHDRAWN:
            raise errors.SubjectWithdrawn(
                f"subject {self.subject_id} was withdrawn ({self.withdrawal_reason}); "
                "nothing more is recorded",
                subject_id=self.subject_id,
            )

    def _require_consent(self) -> Consent:
        if self.consent is None:
            raise errors.ConsentRequired(
                f"subject {self.subject_id} has not signed informed consent",
                subject_id=self.subject_id,
            )
        return self.consent

    def _require_screening(self) -> Screening:
        if self.screening is None:
            raise errors.ScreeningRequired(
                f"subject {self.subject_id} has no screening results recorded",
                subject_id=self.subject_id,
            )
        return self.screening


def _corrected(
    consent: Consent | None, screening: Screening | None, field: str, value: CorrectedValue
) -> tuple[Consent | None, Screening | None]:
    """Consent and screening with ``field`` replaced by ``value``, which must fit its type."""
    section, _, name = field.partition(".")
    if section == "consent" and consent is not None:
        if name == "signed_on" and isinstance(value, date):
            return replace(consent, signed_on=value), screening
        if name == "form_version" and isinstance(value, str):
            return replace(consent, form_version=value), screening
        if name == "obtained_by" and isinstance(value, str):
            return replace(consent, obtained_by=value), screening
    if section == "screening" and screening is not None:
        if name == "screened_on" and isinstance(value, date):
            return consent, replace(screening, screened_on=value)
        # a criterion of the record's study: its screening records every one
        if name in screening.observations and isinstance(value, Observation):
            return consent, replace(screening, observations={**screening.observations, name: value})
    raise errors.InvalidCorrectionValue(
        f"{value!r} is not a valid new value for {field}", field=field
    )


def _check_acting_in(study: StudyDefinition, attribution: Attribution) -> None:
    """A record of a study is made by a caller acting in it (a change recorded without a
    study is the first study's)."""
    acting_in = acting_study(attribution.provenance)
    if study.study_id != acting_in:
        raise ValueError(f"a caller acting in {acting_in} makes no record of {study.study_id}")


def _check_complete(observations: Mapping[str, Observation], study: StudyDefinition) -> None:
    criteria = eligibility_rules(study).by_code
    unknown = sorted(set(observations) - set(criteria))
    if unknown:
        raise errors.UnknownCriterion(f"unknown criteria: {', '.join(unknown)}", criteria=unknown)
    missing = [code for code in criteria if code not in observations]
    if missing:
        raise errors.MissingCriteria(
            f"screening must record every criterion; missing: {', '.join(missing)}",
            criteria=missing,
        )


def _check_screening(
    screening: Screening, consent: Consent, attribution: Attribution, study: StudyDefinition
) -> None:
    """Every value fits its criterion of ``study``, and every date lies between consent
    and today."""
    criteria = eligibility_rules(study).by_code
    _check_not_future("screened_on", screening.screened_on, attribution)
    _check_not_before_consent("screened_on", screening.screened_on, consent)
    for code, observation in screening.observations.items():
        normalise(criteria[code], observation)
        _check_not_before_consent(code, observation.observed_on, consent)
        if observation.observed_on > screening.screened_on:
            raise errors.DateOutOfOrder(
                f"{code} observed on {observation.observed_on}, after the screening date "
                f"{screening.screened_on}",
                criterion=code,
                observed_on=observation.observed_on.isoformat(),
            )


def _check_not_before_consent(name: str, day: date, consent: Consent) -> None:
    if day < consent.signed_on:
        raise errors.DateOutOfOrder(
            f"{name} dated {day}, before informed consent was signed on {consent.signed_on}",
            criterion=name,
            observed_on=day.isoformat(),
            consent_signed_on=consent.signed_on.isoformat(),
        )


def _check_not_future(name: str, day: date, attribution: Attribution) -> None:
    if day > attribution.now.date():
        raise errors.DateInFuture(
            f"{name} {day} is later than today ({attribution.now.date()}, server UTC)",
            field=name,
            value=day.isoformat(),
        )


def _dose_level(level: int, study: StudyDefinition) -> DoseLevel:
    levels = study.dose_levels
    if level not in levels or level not in {int(d) for d in DoseLevel}:
        listed = ", ".join(str(n) for n in levels)
        raise errors.InvalidDoseLevel(
            f"dose level {level} is not one of the study's levels {listed}", dose_level=level
        )
    return DoseLevel(level)


def _reason(reason: str, what: str) -> str:
    reason = reason.strip()
    if not reason:
        raise errors.ReasonRequired(f"a {what} needs a reason", field="reason")
    return reason
