"""What the assessments service publishes: each stored event mapped to its contract."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from services.assessments import laboratory
from services.assessments.rules import SledaiItem
from shared.contracts import assessments as contracts
from shared.envelope import EventData
from shared.publication import to_published

SERVICE = "assessments"


def to_contract(event: Any) -> EventData:
    """Map a stored SubjectAssessments event to its published contract."""
    return to_published(event, SERVICE, contracts.RECORD_TYPE, _BUILDERS, _occurred_at)


def _occurred_at(event: Any) -> datetime:
    """The clinical time of the measurement or visit; the recording time otherwise."""
    for name in ("assessed_at", "sampled_at", "occurred_at"):
        if (value := getattr(event, name, None)) is not None:
            return value  # type: ignore[no-any-return]
    visit = getattr(event, "visit", None)
    return event.timestamp if visit is None else visit.assessed_at  # type: ignore[no-any-return]


def _visit(e: Any, c: dict[str, Any]) -> EventData:
    v = e.visit
    return contracts.DiseaseActivityAssessedV1(
        **c, label=v.label, study_day=v.study_day,
        items={item.value: item.value in v.items_present for item in SledaiItem},
        sledai_2k=v.sledai_2k, clinical_sledai=v.clinical_sledai, pga=v.pga,
        prednisone_mg_per_day=v.prednisone_mg_per_day,
        maintenance_immunosuppression_only=v.maintenance_immunosuppression_only,
        new_bilag_a=v.new_bilag_a, new_bilag_b=v.new_bilag_b, rule_version=v.rule_version,
    )  # fmt: skip


def _result(r: Any) -> contracts.AutoantibodyResultV1:
    return contracts.AutoantibodyResultV1(
        analyte=r.analyte, value=r.value, unit=r.unit, reference_low=r.reference.low,
        reference_high=r.reference.high, canonical_value=r.canonical_value,
        canonical_unit=r.canonical_unit, flag=r.flag,
    )  # fmt: skip


def _remission(e: Any, c: dict[str, Any]) -> EventData:
    d = e.derivation
    return contracts.RemissionAssessedV1(
        **c, response=d.response, remission=d.response in ("complete", "partial"),
        study_day=e.study_day, **asdict(e.inputs), sledai_2k=d.sledai_2k,
        clinical_sledai=d.clinical_sledai, baseline_sledai_2k=d.baseline_sledai_2k,
        doris=d.doris, lldas=d.lldas, sri4=d.sri4, rule_version=d.rule_version,
    )  # fmt: skip


_BUILDERS: dict[str, Callable[[Any, dict[str, Any]], EventData]] = {
    "FollowUpStarted": lambda e, c: contracts.FollowUpStartedV1(
        **c, infused_at=e.infused_at, dose_level=e.dose_level
    ),
    "DiseaseActivityAssessed": _visit,
    "AutoantibodyMeasured": lambda e, c: contracts.AutoantibodyMeasuredV1(
        **c,
        study_day=e.study_day,
        results=[_result(r) for r in e.results],
        rule_version=laboratory.RULE_VERSION,
    ),
    "CarTKineticsMeasured": lambda e, c: contracts.CarTKineticsMeasuredV1(
        **c,
        study_day=e.study_day,
        **asdict(e.sample),
        below_lloq=e.sample.below_lloq,
        rule_version=laboratory.RULE_VERSION,
    ),
    "RemissionAssessed": _remission,
    "ProgressionReported": lambda e, c: contracts.ProgressionReportedV1(
        **c, kind=e.kind, description=e.description, study_day=e.study_day
    ),
}
