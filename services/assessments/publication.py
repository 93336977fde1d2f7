"""What the assessments service publishes: each stored event mapped, by class, to its contract.

The v1 contracts' study days mean what they always meant, the infusion's date as day 1
(CDISC): a day stored in the study's convention (day 0 there) is published so numbered,
and one stored before conventions were named was counted so already."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from services.assessments import laboratory
from services.assessments.domain import SubjectAssessments
from services.assessments.rules import SledaiItem
from shared.clinical import RECORDED_BEFORE_CONVENTIONS, DayConvention, convert_day
from shared.contracts import assessments as contracts
from shared.kernel.publication import Publication, fields_of

SERVICE = "assessments"


def _occurred_at(event: Any) -> datetime:
    """The clinical time of the measurement or visit; the recording time otherwise."""
    for name in ("assessed_at", "sampled_at", "occurred_at"):
        if (value := getattr(event, name, None)) is not None:
            return value  # type: ignore[no-any-return]
    visit = getattr(event, "visit", None)
    return event.timestamp if visit is None else visit.assessed_at  # type: ignore[no-any-return]


PUBLISHED_STUDY_DAYS = DayConvention.INFUSION_DAY_1  # the v1 contracts' "day 1 = infusion day"


def _published_day(event: Any, day: int) -> int:
    """``day``, recorded in the convention ``event`` names, as the v1 contracts count it."""
    recorded_in = getattr(event, "study_day_convention", RECORDED_BEFORE_CONVENTIONS.value)
    return convert_day(day, DayConvention(recorded_in), PUBLISHED_STUDY_DAYS)


def _visit(e: Any) -> dict[str, Any]:
    v = e.visit
    return dict(
        label=v.label, study_day=_published_day(e, v.study_day),
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


def _remission(e: Any) -> dict[str, Any]:
    d = e.derivation
    return dict(
        response=d.response, remission=d.response in ("complete", "partial"),
        study_day=_published_day(e, e.study_day), **asdict(e.inputs), sledai_2k=d.sledai_2k,
        clinical_sledai=d.clinical_sledai, baseline_sledai_2k=d.baseline_sledai_2k,
        doris=d.doris, lldas=d.lldas, sri4=d.sri4, rule_version=d.rule_version,
    )  # fmt: skip


PUBLICATION = Publication(
    SERVICE,
    {SubjectAssessments: contracts.RECORD_TYPE},
    {
        SubjectAssessments.FollowUpStarted: (
            contracts.FollowUpStartedV1,
            fields_of("infused_at", "dose_level"),
        ),
        SubjectAssessments.DiseaseActivityAssessed: (contracts.DiseaseActivityAssessedV1, _visit),
        SubjectAssessments.AutoantibodyMeasured: (
            contracts.AutoantibodyMeasuredV1,
            lambda e: {
                "study_day": _published_day(e, e.study_day),
                "results": [_result(r) for r in e.results],
                "rule_version": laboratory.RULE_VERSION,
            },
        ),
        SubjectAssessments.CarTKineticsMeasured: (
            contracts.CarTKineticsMeasuredV1,
            lambda e: {
                "study_day": _published_day(e, e.study_day),
                **asdict(e.sample),
                "below_lloq": e.sample.below_lloq,
                "rule_version": laboratory.RULE_VERSION,
            },
        ),
        SubjectAssessments.RemissionAssessed: (contracts.RemissionAssessedV1, _remission),
        SubjectAssessments.ProgressionReported: (
            contracts.ProgressionReportedV1,
            lambda e: {
                **fields_of("kind", "description")(e),
                "study_day": _published_day(e, e.study_day),
            },
        ),
    },
    occurred_at=_occurred_at,
)
to_contract = PUBLICATION.to_contract
