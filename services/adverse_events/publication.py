"""What the adverse-events service publishes: each stored event mapped to its contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from shared.contracts import adverse_events as contracts
from shared.envelope import EventData
from shared.publication import to_published

SERVICE = "adverse_events"


def to_contract(event: Any) -> EventData:
    """Map a stored AdverseEvent or SafetyReview event to its published contract."""
    # a safety review is the service's one record that names no subject; a denial
    # (AccessDenied) keeps its subject inside and is mapped by to_published
    subject_id = getattr(event, "subject_id", None)
    record_type = "SafetyReview" if subject_id is None else contracts.RECORD_TYPE
    return to_published(event, SERVICE, record_type, _BUILDERS, _occurred_at)


def _occurred_at(event: Any) -> datetime:
    """The onset for the report; the recording time for what follows."""
    onset: datetime | None = getattr(event, "onset_at", None)
    return onset or event.timestamp


def _grading(event: Any) -> dict[str, Any]:
    g = event.grading
    inputs = g.crs or g.icans
    return {
        "scale": g.scale,
        "grade": g.grade,
        "computed_grade": g.computed_grade,
        "decided_by": g.decided_by,
        "inputs": None if inputs is None else {k: str(v) for k, v in asdict(inputs).items()},
        "grading_rule_version": g.rule_version,
    }


_BUILDERS: dict[str, Callable[[Any, dict[str, Any]], EventData]] = {
    "AdverseEventReported": lambda e, c: contracts.AdverseEventReportedV1(
        **c,
        term=e.term,
        verbatim=e.verbatim,
        meddra_code=e.meddra_code,
        onset_at=e.onset_at,
        study_day=e.study_day,
        treatment_emergent=e.treatment_emergent,
        in_dlt_window=e.in_dlt_window,
        dose_level=e.dose_level,
        rule_version=e.rule_version,
    ),
    "AdverseEventGraded": lambda e, c: contracts.AdverseEventGradedV1(**c, **_grading(e)),
    "AdverseEventRegraded": lambda e, c: contracts.AdverseEventRegradedV1(
        **{**c, **_grading(e), "old_grade": e.old_grade, "reason": e.reason}
    ),
    "SeriousnessAssessed": lambda e, c: contracts.SeriousnessAssessedV1(
        **c, serious=e.seriousness.serious, **asdict(e.seriousness)
    ),
    "CausalityAssessed": lambda e, c: contracts.CausalityAssessedV1(
        **c, car_t=e.car_t, lymphodepletion=e.lymphodepletion
    ),
    "DltAdjudicated": lambda e, c: contracts.DltAdjudicatedV1(
        **{
            **c,
            "is_dlt": e.is_dlt,
            "criterion": e.criterion,
            "reason": e.reason,
            "rule_version": e.rule_version,
        }
    ),
    "SafetyReviewApproved": lambda e, c: contracts.SafetyReviewApprovedV1(
        **c,
        approved_level=e.approved_level,
        decision=e.decision,
        level_reviewed=e.level_reviewed,
        dosed=e.dosed,
        dlts=e.dlts,
        cohort_size=e.cohort_size,
        review_number=e.review_number,
        rule_version=e.rule_version,
    ),
    "AdverseEventResolved": lambda e, c: contracts.AdverseEventResolvedV1(
        **c, ended_on=e.ended_on, outcome=e.outcome
    ),
}
