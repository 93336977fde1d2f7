"""Published events of the adverse-events service (topic ``trialledger.adverse_events.events``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import Field

from shared.kernel.envelope import EventData, ReasonGiven, contract_registry

RECORD_TYPE = "AdverseEvent"


class AdverseEventReportedV1(EventData):
    event_type = "AdverseEventReported.v1"
    term: str
    verbatim: str
    meddra_code: str | None
    onset_at: datetime
    study_day: int = Field(description="day 1 = infusion day; no day 0")
    treatment_emergent: bool
    in_dlt_window: bool
    dose_level: int
    rule_version: str


class GradingV1(EventData):
    """Common to a grade and a regrade: the scale, the grade, and what it rests on."""

    scale: str
    grade: int = Field(ge=0, le=5)
    computed_grade: int | None
    decided_by: str
    inputs: dict[str, Any] | None = Field(description="ASTCT components, as entered")
    grading_rule_version: str


class AdverseEventGradedV1(GradingV1):
    event_type = "AdverseEventGraded.v1"


class AdverseEventRegradedV1(ReasonGiven, GradingV1):
    event_type = "AdverseEventRegraded.v1"
    old_grade: int


class SeriousnessAssessedV1(EventData):
    event_type = "SeriousnessAssessed.v1"
    serious: bool
    death: bool
    life_threatening: bool
    hospitalisation: bool
    disability: bool
    congenital_anomaly: bool
    medically_important: bool


class CausalityAssessedV1(EventData):
    event_type = "CausalityAssessed.v1"
    car_t: str
    lymphodepletion: str


class DltAdjudicatedV1(ReasonGiven):
    event_type = "DltAdjudicated.v1"
    is_dlt: bool
    criterion: str | None
    rule_version: str


class AdverseEventResolvedV1(EventData):
    event_type = "AdverseEventResolved.v1"
    ended_on: date
    outcome: str


ADVERSE_EVENT_CONTRACTS = contract_registry(
    AdverseEventReportedV1,
    AdverseEventGradedV1,
    AdverseEventRegradedV1,
    SeriousnessAssessedV1,
    CausalityAssessedV1,
    DltAdjudicatedV1,
    AdverseEventResolvedV1,
)


class SafetyReviewApprovedV1(EventData):
    """A signed safety review opening the next cohort at ``approved_level`` (3+3)."""

    event_type = "SafetyReviewApproved.v1"
    approved_level: int = Field(ge=1, le=4)
    decision: str
    level_reviewed: int
    dosed: int
    dlts: int
    cohort_size: int
    review_number: int
    rule_version: str


ADVERSE_EVENT_CONTRACTS = {
    **ADVERSE_EVENT_CONTRACTS,
    **contract_registry(SafetyReviewApprovedV1),
}
