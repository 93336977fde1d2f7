"""What the enrollment service publishes: each stored domain event mapped to its contract.

The relay calls ``to_contract`` for every committed event; the stored state itself is
never published.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import JsonValue

from services.enrollment.rules import CRITERIA_BY_CODE, CriterionResult, Observation
from shared.contracts import enrollment as contracts
from shared.envelope import EventData
from shared.publication import to_published

SERVICE = "enrollment"


def to_contract(event: Any) -> EventData:
    """Map a stored Subject event to its published contract."""
    return to_published(event, SERVICE, contracts.RECORD_TYPE, _BUILDERS, lambda e: e.occurred_at)


def _observation(code: str, observation: Observation) -> contracts.ObservationV1:
    return contracts.ObservationV1(
        criterion=code,
        kind=CRITERIA_BY_CODE[code].kind.value,
        value=_json_value(observation.value),
        unit=observation.unit,
        upper_limit_normal=observation.upper_limit_normal,
        observed_on=observation.observed_on,
    )


def _criterion(result: CriterionResult) -> contracts.CriterionResultV1:
    return contracts.CriterionResultV1(
        criterion=result.code,
        kind=CRITERIA_BY_CODE[result.code].kind.value,
        met=result.met,
        value=_json_value(result.value),
        unit=result.unit,
        requirement=result.requirement,
    )


def _json_value(value: object) -> str | bool | None:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"unexpected value {value!r}")


def _corrected(value: object) -> JsonValue:
    if isinstance(value, Observation):
        return _observation_json(value)
    return _json_value(value)


def _observation_json(observation: Observation) -> JsonValue:
    return {
        "value": _json_value(observation.value),
        "unit": observation.unit,
        "upper_limit_normal": _json_value(observation.upper_limit_normal),
        "observed_on": observation.observed_on.isoformat(),
    }


# Keyed by event class name: the classes are made by the @event decorator at import.
_BUILDERS: dict[str, Callable[[Any, dict[str, Any]], EventData]] = {
    "SubjectRegistered": lambda e, c: contracts.SubjectRegisteredV1(site_id=e.site_id, **c),
    "ConsentSigned": lambda e, c: contracts.ConsentSignedV1(
        form_version=e.consent.form_version,
        signed_on=e.consent.signed_on,
        obtained_by=e.consent.obtained_by,
        **c,
    ),
    "ScreeningResultRecorded": lambda e, c: contracts.ScreeningResultRecordedV1(
        screened_on=e.screening.screened_on,
        observations=[_observation(k, o) for k, o in e.screening.observations.items()],
        **c,
    ),
    "EligibilityConfirmed": lambda e, c: contracts.EligibilityConfirmedV1(
        rule_version=e.assessment.rule_version,
        criteria=[_criterion(r) for r in e.assessment.results],
        **c,
    ),
    "ScreenFailed": lambda e, c: contracts.ScreenFailedV1(
        rule_version=e.assessment.rule_version,
        failed_criteria=list(e.assessment.failed_criteria),
        criteria=[_criterion(r) for r in e.assessment.results],
        **c,
    ),
    "SubjectEnrolled": lambda e, c: contracts.SubjectEnrolledV1(
        dose_level=int(e.dose_level),
        dose_cells_per_kg=Decimal(int(e.dose_level)) * Decimal(1_000_000),
        **c,
    ),
    "SubjectWithdrawn": lambda e, c: contracts.SubjectWithdrawnV1(**{**c, "reason": e.reason}),
    "SubjectDied": lambda e, c: contracts.SubjectDiedV1(
        **c, cause=e.cause, adverse_event_id=e.adverse_event_id
    ),
    "ValueCorrected": lambda e, c: contracts.ValueCorrectedV1(
        **{
            **c,
            "field": e.field,
            "old_value": _corrected(e.old_value),
            "new_value": _corrected(e.new_value),
            "reason": e.reason,
        }
    ),
}
