"""What the enrollment service publishes: each stored domain event mapped to its contract.

The relay calls ``to_contract`` for every committed event; the stored state itself is
never published. The table is keyed by event class (``shared.kernel.publication``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import JsonValue

from services.enrollment.domain import Subject
from services.enrollment.rules import Criterion, CriterionResult, Observation, eligibility_rules
from shared.contracts import enrollment as contracts
from shared.kernel.publication import Publication, fields_of
from shared.study import StudyDefinition, acting_study, study_definition

SERVICE = "enrollment"
MILLION = Decimal(1_000_000)


def _study(event: Any) -> StudyDefinition:
    """The study of a stored event (one stored before studies were named: the first)."""
    return study_definition(acting_study(event.provenance))


def _criteria(event: Any) -> Mapping[str, Criterion]:
    return eligibility_rules(_study(event)).by_code


def _observation(
    code: str, observation: Observation, criteria: Mapping[str, Criterion]
) -> contracts.ObservationV1:
    return contracts.ObservationV1(
        criterion=code,
        kind=criteria[code].kind.value,
        value=_json_value(observation.value),
        unit=observation.unit,
        upper_limit_normal=observation.upper_limit_normal,
        observed_on=observation.observed_on,
    )


def _criterion(
    result: CriterionResult, criteria: Mapping[str, Criterion]
) -> contracts.CriterionResultV1:
    return contracts.CriterionResultV1(
        criterion=result.code,
        kind=criteria[result.code].kind.value,
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
                "observations": [
                    _observation(k, o, _criteria(e)) for k, o in e.screening.observations.items()
                ],
            },
        ),
        Subject.EligibilityConfirmed: (
            contracts.EligibilityConfirmedV1,
            lambda e: {
                "rule_version": e.assessment.rule_version,
                "criteria": [_criterion(r, _criteria(e)) for r in e.assessment.results],
            },
        ),
        Subject.ScreenFailed: (
            contracts.ScreenFailedV1,
            lambda e: {
                "rule_version": e.assessment.rule_version,
                "failed_criteria": list(e.assessment.failed_criteria),
                "criteria": [_criterion(r, _criteria(e)) for r in e.assessment.results],
            },
        ),
        Subject.SubjectEnrolled: (
            contracts.SubjectEnrolledV1,
            lambda e: {
                "dose_level": int(e.dose_level),
                # the study's dose of the level (the first study's: 1-4 x10^6, as ever)
                "dose_cells_per_kg": _study(e).dose(int(e.dose_level)) * MILLION,
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
