"""What the adverse-events service publishes: each stored event mapped to its contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from shared.access import access_denied_contract, signature_contract
from shared.contracts import adverse_events as contracts
from shared.envelope import ActorV1, EventData, SourceV1
from shared.provenance import Provenance
from shared.publication import event_id

SERVICE = "adverse_events"


def to_contract(event: Any) -> EventData:
    """Map a stored AdverseEvent event to its published contract."""
    name = type(event).__name__
    if name == "AccessDenied":
        return access_denied_contract(
            event, SERVICE, event_id(event.originator_id, event.originator_version)
        )
    if name == "RecordSigned":
        return signature_contract(event, _common(event))
    return _BUILDERS[name](event, _common(event))


def _common(event: Any) -> dict[str, Any]:
    provenance: Provenance = event.provenance
    actor = provenance.actor
    occurred = getattr(event, "onset_at", None) or event.timestamp
    return {
        "event_id": event_id(event.originator_id, event.originator_version),
        "subject_id": event.subject_id,
        "record_type": contracts.RECORD_TYPE,
        "record_id": event.originator_id,
        "version": event.originator_version,
        "occurred_at": occurred,
        "recorded_at": event.timestamp,
        "actor": ActorV1(
            user_id=actor.user_id, printed_name=actor.printed_name, role=actor.role, site=actor.site
        ),
        "correlation_id": provenance.correlation_id,
        "causation_id": provenance.causation_id,
        "source": SourceV1(service=SERVICE, client_id=provenance.client_id),
    }


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
    "AdverseEventResolved": lambda e, c: contracts.AdverseEventResolvedV1(
        **c, ended_on=e.ended_on, outcome=e.outcome
    ),
}
