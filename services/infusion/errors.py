"""The infusion service's refusals: one class per broken rule, each in its family
(``shared.kernel.errors``: out of sequence, invalid value, whose names this module
also answers to), with a stable ``code`` that clients may rely on.
"""

from __future__ import annotations

from shared.kernel.errors import InvalidValue, OutOfSequence


class NotEnrolledYet(OutOfSequence):
    """Only a subject the local enrollment view shows as enrolled is treated. The view
    follows the enrollment topic, so a just-enrolled subject may appear a moment later:
    ``retryable`` says whether that can be why (the view does not know the subject, or
    knows it as eligible)."""

    code = "not_enrolled"


class SubjectWithdrawn(OutOfSequence):
    """A withdrawn subject receives nothing more."""

    code = "subject_withdrawn"


class LeukapheresisRequired(OutOfSequence):
    """Leukapheresis comes first."""

    code = "leukapheresis_required"


class AlreadyDone(OutOfSequence):
    """Leukapheresis, lymphodepletion and the infusion happen once per subject."""

    code = "already_done"


class ProductNotReleased(OutOfSequence):
    """Only a released lot of this subject's product can be infused."""

    code = "product_not_released"


class LymphodepletionRequired(OutOfSequence):
    """Lymphodepletion is given, within the protocol window, before the infusion."""

    code = "lymphodepletion_required"


class OutsideLymphodepletionWindow(OutOfSequence):
    """The infusion falls within the configured days after the last lymphodepletion day."""

    code = "outside_lymphodepletion_window"


class DoseOutOfTolerance(InvalidValue):
    """The infused CAR-T cells/kg must match the assigned dose level within the tolerance."""

    code = "dose_out_of_tolerance"


class ReleaseTestsFailed(InvalidValue):
    """A lot is released only when sterility and every release test passed."""

    code = "release_tests_failed"


class InvalidMeasurement(InvalidValue):
    """A number, unit, date or time that cannot be right."""

    code = "invalid_measurement"


class ReasonRequired(InvalidValue):
    code = "reason_required"


class ConcurrentChange(OutOfSequence):
    code = "concurrent_change"


class CohortNotOpen(OutOfSequence):
    """A subject of a new cohort is dosed only after a signed safety review opened its level
    (which needs every earlier subject's DLT window closed)."""

    code = "cohort_not_open"


class CohortFull(OutOfSequence):
    """A cohort doses the subjects its review allowed (3); the next waits for a new review."""

    code = "cohort_full"
