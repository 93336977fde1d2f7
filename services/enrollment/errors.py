"""The enrollment service's refusals: one class per broken rule, each in its family
(``shared.kernel.errors``: not found, out of sequence, invalid value, whose names
this module also answers to), with a stable ``code`` that clients may rely on.
"""

from __future__ import annotations

from shared.kernel.errors import InvalidValue, NotFound, OutOfSequence


class SubjectNotFound(NotFound):
    """A command names a subject that was never registered."""

    code = "subject_not_found"

    def __init__(self, subject_id: str) -> None:
        super().__init__(f"subject {subject_id} is not registered", subject_id=subject_id)


# --- out of sequence -----------------------------------------------------------------


class SubjectAlreadyRegistered(OutOfSequence):
    """A subject id is registered once only."""

    code = "subject_already_registered"


class SubjectWithdrawn(OutOfSequence):
    """Nothing is recorded for a subject after withdrawal."""

    code = "subject_withdrawn"


class SubjectDied(OutOfSequence):
    """Nothing is recorded for a subject after their death (recorded once)."""

    code = "subject_died"


class ConsentRequired(OutOfSequence):
    """No screening procedure before informed consent is signed."""

    code = "consent_required"


class ConsentAlreadyRecorded(OutOfSequence):
    """Consent is recorded once; a wrong value is corrected, not recorded again."""

    code = "consent_already_recorded"


class ScreeningRequired(OutOfSequence):
    """Eligibility is decided only on recorded screening results."""

    code = "screening_required"


class ScreeningAlreadyRecorded(OutOfSequence):
    """Screening is recorded once; a wrong value is corrected, not recorded again."""

    code = "screening_already_recorded"


class EligibilityAlreadyDecided(OutOfSequence):
    """Eligibility is decided once, and screening values are frozen after the decision."""

    code = "eligibility_already_decided"


class NotEligible(OutOfSequence):
    """Only a subject confirmed eligible may be enrolled."""

    code = "not_eligible"


class AlreadyEnrolled(OutOfSequence):
    """A subject is enrolled once, at one dose level."""

    code = "already_enrolled"


class ConcurrentChange(OutOfSequence):
    """Someone else changed the subject's record at the same moment: reload and retry."""

    code = "concurrent_change"


# --- invalid values ------------------------------------------------------------------


class InvalidSubjectId(InvalidValue):
    """Subject ids are 1-32 characters of A-Z, 0-9 and hyphen."""

    code = "invalid_subject_id"


class DateInFuture(InvalidValue):
    """A clinical date or time cannot be later than the server's clock."""

    code = "date_in_future"


class DateOutOfOrder(InvalidValue):
    """Screening procedures happen on or after consent, and on or before the screening date."""

    code = "date_out_of_order"


class MissingCriteria(InvalidValue):
    """Screening records every criterion of the protocol record."""

    code = "missing_criteria"


class UnknownCriterion(InvalidValue):
    """Only criteria of the protocol record's rule table are recorded."""

    code = "unknown_criterion"


class InvalidObservation(InvalidValue):
    """An observation's value, unit or reference limit does not fit its criterion."""

    code = "invalid_observation"


class InvalidDoseLevel(InvalidValue):
    """The protocol has dose levels 1 to 4 (x10^6 CAR-T cells/kg)."""

    code = "invalid_dose_level"


class ReasonRequired(InvalidValue):
    """Withdrawals and corrections need a reason (Part 11 §11.10(e))."""

    code = "reason_required"


class UncorrectableField(InvalidValue):
    """Only recorded consent and screening values can be corrected."""

    code = "uncorrectable_field"


class CorrectionChangesNothing(InvalidValue):
    """A correction must change the value it corrects."""

    code = "correction_changes_nothing"


class InvalidCorrectionValue(InvalidValue):
    """A correction's new value must have the type of the field it corrects."""

    code = "invalid_correction_value"


class SignatureRequired(InvalidValue):
    """Consent and the eligibility decision are signed steps."""

    code = "signature_required"


class DoseLevelNotAllowed(OutOfSequence):
    """Enrollment assigns only the level the 3+3 state allows (the latest safety review's)."""

    code = "dose_level_not_allowed"
