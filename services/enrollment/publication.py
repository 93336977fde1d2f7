"""What the enrollment service publishes: each stored domain event mapped to its contract.

The relay calls ``to_contract`` for every committed event; the stored state itself is
never published. The table is keyed by event class (``shared.kernel.publication``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import JsonValue

from services.enrollment.domain import Subject
from services.enrollment.rules import CRITERIA_BY_CODE, CriterionResult, Observation
from shared.contracts import enrollment as contracts
from shared.kernel.publication import Publication, fields_of

SERVICE = "enrollment"


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


PUBLICATION = Publication(
    SERVICE,
    {Subject: contracts.RECORD_TYPE},
    {
        Subject.SubjectRegistered: (contracts.SubjectRegisteredV1, fields_of("site_id")),
        Subject.ConsentSigned: (
            contracts.ConsentSignedV1,
            lambda e: {
                "form_version": e.consent.form_version,
                "signed_on": e.consent.signed_on,
                "obtained_by": e.consent.obtained_by,
            },
        ),
        Subject.ScreeningResultRecorded: (
            contracts.ScreeningResultRecordedV1,
            lambda e: {
                "screened_on": e.screening.screened_on,
                "observations": [_observation(k, o) for k, o in e.screening.observations.items()],
            },
        ),
        Subject.EligibilityConfirmed: (
            contracts.EligibilityConfirmedV1,
            lambda e: {
                "rule_version": e.assessment.rule_version,
                "criteria": [_criterion(r) for r in e.assessment.results],
            },
        ),
        Subject.ScreenFailed: (
            contracts.ScreenFailedV1,
            lambda e: {
                "rule_version": e.assessment.rule_version,
                "failed_criteria": list(e.assessment.failed_criteria),
                "criteria": [_criterion(r) for r in e.assessment.results],
            },
        ),
        Subject.SubjectEnrolled: (
            contracts.SubjectEnrolledV1,
            lambda e: {
                "dose_level": int(e.dose_level),
                "dose_cells_per_kg": Decimal(int(e.dose_level)) * Decimal(1_000_000),
            },
        ),
        Subject.SubjectWithdrawn: (contracts.SubjectWithdrawnV1, fields_of("reason")),
        Subject.SubjectDied: (contracts.SubjectDiedV1, fields_of("cause", "adverse_event_id")),
        Subject.ValueCorrected: (
            contracts.ValueCorrectedV1,
            lambda e: {
                "field": e.field,
                "old_value": _corrected(e.old_value),
                "new_value": _corrected(e.new_value),
                "reason": e.reason,
            },
        ),
    },
    occurred_at=lambda e: e.occurred_at,
)
to_contract = PUBLICATION.to_contract
