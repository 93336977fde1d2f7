"""The assessments service's refusals: one class per broken rule, each in its family
(``shared.kernel.errors``: not found, out of sequence, invalid value, whose names
this module also answers to), with a stable ``code`` that clients may rely on.
"""

from __future__ import annotations

from shared.kernel.errors import InvalidValue, NotFound, OutOfSequence


class InvalidAssessment(InvalidValue):
    """An assessment that cannot be right: a SLEDAI-2K item left unanswered, a PGA
    outside 0-3, a unit that does not belong to the analyte or the method."""

    code = "invalid_assessment"


class InvalidTime(InvalidValue):
    """An assessment time later than the server clock."""

    code = "invalid_time"


class RemissionNotSupported(InvalidValue):
    """The response claimed is not the one the rule set derives from the visit, the visit
    before it and the baseline; the details say what it derives and why."""

    code = "remission_not_supported"


class InputsMissing(OutOfSequence):
    """A response needs its inputs: a visit after the infusion and a baseline visit
    before it."""

    code = "inputs_missing"


class AlreadyAssessed(OutOfSequence):
    """A visit's response is assessed once."""

    code = "already_assessed"


class SubjectInactive(OutOfSequence):
    """Nothing is assessed after the subject's death or withdrawal."""

    code = "subject_inactive"


class SubjectNotInfused(OutOfSequence):
    """Assessments are recorded for subjects the local infusion view knows as infused
    (the study calendar starts there). Retry if the infusion was just recorded."""

    code = "subject_not_infused"


class VisitNotFound(NotFound):
    """No such disease-activity visit in this subject's record."""

    code = "visit_not_found"


class SubjectNotFound(NotFound):
    """No assessments are recorded for this subject."""

    code = "subject_not_found"


class ConcurrentChange(OutOfSequence):
    """The record kept changing underneath the command; retry it."""

    code = "concurrent_change"
