"""What the adverse-events service publishes: each stored event mapped, by class, to its
contract. A safety review is the service's one record that names no subject."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from services.adverse_events.domain import AdverseEvent, SafetyReview
from shared.clinical import RECORDED_BEFORE_CONVENTIONS, DayConvention, convert_day
from shared.contracts import adverse_events as contracts
from shared.kernel.publication import Publication, fields_of

SERVICE = "adverse_events"


def _occurred_at(event: Any) -> datetime:
    """The onset for the report, the clinical time of a safety review; the recording time
    for what follows."""
    clinical: datetime | None = getattr(event, "onset_at", None) or getattr(
        event, "reviewed_at", None
    )
    return clinical or event.timestamp


def _report(event: Any) -> dict[str, Any]:
    """A report. ``AdverseEventReported.v1``'s study day means what it always meant, the
    infusion's date as day 1 (CDISC): a day stored in the study's convention (day 0 there)
    is published so numbered; reports stored before conventions were named were counted
    so already."""
    recorded_in = getattr(event, "study_day_convention", RECORDED_BEFORE_CONVENTIONS.value)
    day = convert_day(event.study_day, DayConvention(recorded_in), PUBLISHED_STUDY_DAYS)
    return {**_REPORT_FIELDS(event), "study_day": day}


PUBLISHED_STUDY_DAYS = DayConvention.INFUSION_DAY_1  # the v1 contracts' "day 1 = infusion day"


_REPORT_FIELDS = fields_of(
    "term",
    "verbatim",
    "meddra_code",
    "onset_at",
    "study_day",
    "treatment_emergent",
    "in_dlt_window",
    "dose_level",
    "rule_version",
)


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


PUBLICATION = Publication(
    SERVICE,
    {AdverseEvent: contracts.RECORD_TYPE, SafetyReview: "SafetyReview"},
    {
        AdverseEvent.AdverseEventReported: (contracts.AdverseEventReportedV1, _report),
        AdverseEvent.AdverseEventGraded: (contracts.AdverseEventGradedV1, _grading),
        AdverseEvent.AdverseEventRegraded: (
            contracts.AdverseEventRegradedV1,
            lambda e: {**_grading(e), "old_grade": e.old_grade, "reason": e.reason},
        ),
        AdverseEvent.SeriousnessAssessed: (
            contracts.SeriousnessAssessedV1,
            lambda e: {"serious": e.seriousness.serious, **asdict(e.seriousness)},
        ),
        AdverseEvent.CausalityAssessed: (
            contracts.CausalityAssessedV1,
            fields_of("car_t", "lymphodepletion"),
        ),
        AdverseEvent.DltAdjudicated: (
            contracts.DltAdjudicatedV1,
            fields_of("is_dlt", "criterion", "reason", "rule_version"),
        ),
        AdverseEvent.AdverseEventResolved: (
            contracts.AdverseEventResolvedV1,
            fields_of("ended_on", "outcome"),
        ),
        SafetyReview.SafetyReviewApproved: (
            contracts.SafetyReviewApprovedV1,
            fields_of(
                "approved_level",
                "decision",
                "level_reviewed",
                "dosed",
                "dlts",
                "cohort_size",
                "review_number",
                "rule_version",
            ),
        ),
    },
    occurred_at=_occurred_at,
    # both records are signed (SubjectRecord.RecordSigned); only a review names no subject
    record_type_of=lambda e: contracts.RECORD_TYPE if e.subject_id else "SafetyReview",
)
to_contract = PUBLICATION.to_contract
