"""The adverse events service's refusals: one class per broken rule, each in its family
(``shared.kernel.errors``: not found, out of sequence, invalid value, whose names
this module also answers to), with a stable ``code`` that clients may rely on.
"""

from __future__ import annotations

from shared.kernel.errors import InvalidValue, NotFound, OutOfSequence


class GradeNotAllowed(InvalidValue):
    """A CTCAE v5.0 grade is an integer from 1 to 5 that the term defines: not every term
    allows every grade (hypoxia has no grade 1 or 5, alopecia stops at 2)."""

    code = "grade_not_allowed"


class GradeFiveWithoutDeath(InvalidValue):
    """Grade 5 is death related to the adverse event (CTCAE v5.0; ASTCT likewise): it is
    recorded only for an event whose record shows the death, that is the seriousness
    assessment's ``death`` (SDTM AESDTH) or, for CRS and ICANS, the components' death.
    Record the seriousness first; and a seriousness without death is refused for an event
    graded 5."""

    code = "grade_5_without_death"


class ScaleNotForTerm(InvalidValue):
    """Each term has one grading scale: CRS and ICANS by the ASTCT components, every other
    term by a CTCAE v5.0 grade; a grade given on the other scale is refused."""

    code = "scale_not_for_term"


class InvalidGradingInput(InvalidValue):
    """A grading component that cannot be right: a temperature outside 30-45 °C, an ICE
    score outside 0-10 or one of its parts outside its own range, an oxygen flow <= 0."""

    code = "invalid_grading_input"


class ReasonRequired(InvalidValue):
    """A manual grade that differs from the grade computed from its components needs a
    reason, recorded with it."""

    code = "reason_required"


class InvalidTime(InvalidValue):
    """Times are aware datetimes; a naive time cannot be placed on the study calendar."""

    code = "invalid_time"


class InvalidEscalationInput(InvalidValue):
    """The 3+3 inputs are inconsistent: a dose level outside the protocol's levels, a
    subject counted twice, or more than 6 subjects at one level."""

    code = "invalid_escalation_input"


class LevelNotOpen(OutOfSequence):
    """A dose level opens only once the level below has been cleared by the 3+3 rules
    (0/3, or at most 1/6, with every DLT window closed)."""

    code = "level_not_open"


class SubjectNotInfused(OutOfSequence):
    """Adverse events are recorded for subjects the local infusion view knows as infused
    (onsets before the infusion are recorded too, and are not treatment-emergent).
    Retry if the infusion was just recorded."""

    code = "subject_not_infused"


class NotGradedYet(OutOfSequence):
    """Regrading, causality and DLT adjudication need a graded event."""

    code = "not_graded"


class AlreadyGraded(OutOfSequence):
    """An event is graded once; a change is a regrade, with its reason."""

    code = "already_graded"


class EventResolved(OutOfSequence):
    """A resolved event is not changed any more."""

    code = "adverse_event_resolved"


class NotADlt(InvalidValue):
    """A DLT is adjudicated only for an event that starts in the DLT window (days 1-28)
    and meets the DLT rule set the adjudication names."""

    code = "not_a_dlt"


class AdverseEventNotFound(NotFound):
    code = "adverse_event_not_found"


class ReviewRefused(OutOfSequence):
    """A safety review approves only the level the 3+3 state allows next, once every
    dosed subject's DLT window has closed."""

    code = "safety_review_refused"


class ExpansionRefused(OutOfSequence):
    """A dose-expansion cohort opens once, at a level 3+3 has cleared, once every dosed
    subject's DLT window has closed, while the level has fewer subjects than the design
    treats there."""

    code = "dose_expansion_refused"


class ReviewAlreadyApproved(OutOfSequence):
    """Each safety review (by its number) is approved once; the next one is signed anew."""

    code = "safety_review_already_approved"
