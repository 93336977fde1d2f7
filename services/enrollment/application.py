"""The enrollment application: command methods over the subject's event-sourced record.

Callers speak domain types; library errors are translated into enrollment errors
here, so no caller ever sees eventsourcing's or psycopg's exceptions.
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
            Subject.register(subject_id, site_id, attribution, occurred_at),
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
        return self._change(
            subject_id, lambda s: s.record_screening(screening, attribution, occurred_at)
        )

    def decide_eligibility(
        self,
        subject_id: str,
        attribution: Attribution,
        signing: SigningAssertion,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Evaluate the criteria: eligibility confirmed, or a screen failure naming why; signed."""
        return self._change(
            subject_id,
            lambda s: s.decide_eligibility(attribution, occurred_at),
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
        """Enrol an eligible subject at the dose level the 3+3 state allows."""
        return self._change(
            subject_id, lambda s: s.enrol(dose_level, allowed_level, attribution, occurred_at)
        )

    def withdraw(
        self,
        subject_id: str,
        reason: str,
        attribution: Attribution,
        occurred_at: datetime | None = None,
    ) -> Subject:
        """Withdraw a subject, with a reason."""
        return self._change(subject_id, lambda s: s.withdraw(reason, attribution, occurred_at))

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
            subject_id, lambda s: s.record_death(cause, adverse_event_id, attribution, occurred_at)
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
        return self._change(subject_id, lambda s: s.correct(field, new_value, reason, attribution))

    def get_subject(self, subject_id: str) -> Subject:
        """The subject's current record, or SubjectNotFound."""
        subject: Subject = self.load(
            subject_record_id(subject_id), lambda: errors.SubjectNotFound(subject_id)
        )
        return subject

    def _change(
        self,
        subject_id: str,
        decide: Callable[[Subject], None],
        signing: tuple[SigningAssertion, Attribution] | None = None,
    ) -> Subject:
        if signing is not None:
            decide = self.decided_and_signed(decide, *signing, to_contract)
        return self.saved_with_retry(
            lambda: self.get_subject(subject_id),
            decide,
            lambda: errors.ConcurrentChange(
                f"subject {subject_id} kept changing underneath this command; retry",
                subject_id=subject_id,
            ),
        )
