"""The enrollment application: command methods over the subject's event-sourced record.

Callers speak domain types; library errors are translated into enrollment errors
here, so no caller ever sees eventsourcing's or psycopg's exceptions.

Every command acts in the caller's study (``Attribution.provenance.study_id``, the study
of the request's token and route): its subject's record id is in that study's namespace,
and its definition (read once per process, ``shared.study``) is the rules the domain
decides by. A query names its study (the first study's by default).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.enrollment import errors
from services.enrollment.domain import (
    Consent,
    CorrectedValue,
    Screening,
    Subject,
    subject_record_id,
)
from services.enrollment.publication import to_contract
from shared.adapters.eventstore import ServiceApplication
from shared.kernel.provenance import Attribution
from shared.study import DEFAULT_STUDY_ID, StudyDefinition, acting_study, study_definition
from shared.web.auth import SigningAssertion


class EnrollmentApplication(ServiceApplication):
    """Commands of the enrollment service; each loads, decides, and saves one subject.

    Signed steps take the caller's verified signing assertion; the signature is made
    over the published form of the event just decided and saved with it, atomically.
    """

    name = "enrollment"
    records = (Subject,)

    def register_subject(
        self,
        subject_id: str,
        site_id: str,
        attribution: Attribution,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Register a new subject; a subject id is registered once only."""
        return self.save_new(
            Subject.register(subject_id, site_id, attribution, occurred_at, study_of(attribution)),
            lambda: errors.SubjectAlreadyRegistered(
                f"subject {subject_id} is already registered", subject_id=subject_id
            ),
        )

    def sign_consent(
        self,
        subject_id: str,
        consent: Consent,
        attribution: Attribution,
        signing: SigningAssertion,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Record the subject's informed consent (form version, date, who obtained it), signed."""
        return self._change(
            subject_id,
            attribution,
            lambda s: s.sign_consent(consent, attribution, occurred_at),
            (signing, attribution),
        )

    def record_screening(
        self,
        subject_id: str,
        screening: Screening,
        attribution: Attribution,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Record the screening observation of every protocol criterion."""
        study = study_of(attribution)
        return self._change(
            subject_id,
            attribution,
            lambda s: s.record_screening(screening, attribution, occurred_at, study),
        )

    def decide_eligibility(
        self,
        subject_id: str,
        attribution: Attribution,
        signing: SigningAssertion,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Evaluate the criteria: eligibility confirmed, or a screen failure naming why; signed."""
        study = study_of(attribution)
        return self._change(
            subject_id,
            attribution,
            lambda s: s.decide_eligibility(attribution, occurred_at, study),
            (signing, attribution),
        )

    def enrol(
        self,
        subject_id: str,
        dose_level: int,
        attribution: Attribution,
        occurred_at: datetime | None = None,
        allowed_level: int = 1,
    ) -> Subject:
        """Enrol an eligible subject at the dose level the 3+3 state of its study allows."""
        study = study_of(attribution)
        return self._change(
            subject_id,
            attribution,
            lambda s: s.enrol(dose_level, allowed_level, attribution, occurred_at, study),
        )

    def withdraw(
        self,
        subject_id: str,
        reason: str,
        attribution: Attribution,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Withdraw a subject, with a reason."""
        return self._change(
            subject_id, attribution, lambda s: s.withdraw(reason, attribution, occurred_at)
        )

    def record_death(
        self,
        subject_id: str,
        cause: str,
        adverse_event_id: str | None,
        attribution: Attribution,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Record a subject's death, with its cause."""
        return self._change(
            subject_id,
            attribution,
            lambda s: s.record_death(cause, adverse_event_id, attribution, occurred_at),
        )

    def correct_value(
        self,
        subject_id: str,
        field: str,
        new_value: CorrectedValue,
        reason: str,
        attribution: Attribution,
    ) -> Subject:
        """Correct a recorded value; the old value, the new value and the reason are kept."""
        study = study_of(attribution)
        return self._change(
            subject_id,
            attribution,
            lambda s: s.correct(field, new_value, reason, attribution, study),
        )

    def get_subject(self, subject_id: str, study_id: str = DEFAULT_STUDY_ID) -> Subject:
        """The current record of a subject of ``study_id``, or SubjectNotFound."""
        subject: Subject = self.load(
            subject_record_id(subject_id, study_definition(study_id)),
            lambda: errors.SubjectNotFound(subject_id),
        )
        return subject

    def _change(
        self,
        subject_id: str,
        attribution: Attribution,
        decide: Callable[[Subject], None],
        signing: tuple[SigningAssertion, Attribution] | None = None,
    ) -> Subject:
        if signing is not None:
            decide = self.decided_and_signed(decide, *signing, to_contract)
        return self.saved_with_retry(
            lambda: self.get_subject(subject_id, study_of(attribution).study_id),
            decide,
            lambda: errors.ConcurrentChange(
                f"subject {subject_id} kept changing underneath this command; retry",
                subject_id=subject_id,
            ),
        )


def study_of(attribution: Attribution) -> StudyDefinition:
    """The definition of the study a command acts in (a change naming none: the first's)."""
    return study_definition(acting_study(attribution.provenance))
