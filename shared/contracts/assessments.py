"""Published events of the assessments service (topic ``trialledger.assessments.events``).

Every event carries its study day (day 1 = infusion day; no day 0). A remission names
the visits it was derived from by their event ids, and the rule version that derived it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from shared.kernel.envelope import Contract, EventData, contract_registry

RECORD_TYPE = "SubjectAssessments"
StudyDay = Field(description="day 1 = infusion day; no day 0")


class FollowUpStartedV1(EventData):
    """The subject's assessment record opens, anchored at the infusion."""

    event_type = "FollowUpStarted.v1"
    infused_at: datetime
    dose_level: int = Field(ge=1, le=4)


# The 24 SLEDAI-2K descriptors in the instrument's order, as ``items`` names them: a visit
# answers every one (the assessments rules weigh them; the SDTM export numbers them).
SLEDAI_2K_ITEMS = (
    "seizure", "psychosis", "organic_brain_syndrome", "visual_disturbance",
    "cranial_nerve_disorder", "lupus_headache", "cerebrovascular_accident", "vasculitis",
    "arthritis", "myositis", "urinary_casts", "haematuria", "proteinuria", "pyuria", "rash",
    "alopecia", "mucosal_ulcers", "pleurisy", "pericarditis", "low_complement",
    "increased_dna_binding", "fever", "thrombocytopenia", "leukopenia",
)  # fmt: skip


class DiseaseActivityAssessedV1(EventData):
    """A visit: the 24 SLEDAI-2K items as answered, the scores computed from them, the
    physician's global assessment and the prednisone-equivalent dose."""

    event_type = "DiseaseActivityAssessed.v1"
    label: str = Field(examples=["baseline", "month 3"])
    study_day: int = StudyDay
    items: dict[str, bool] = Field(description="every SLEDAI-2K item: present or not")
    sledai_2k: int = Field(ge=0, le=105)
    clinical_sledai: int = Field(ge=0, le=101)
    pga: Decimal = Field(ge=0, le=3, description="physician's global assessment, 0-3")
    prednisone_mg_per_day: Decimal = Field(ge=0)
    maintenance_immunosuppression_only: bool
    new_bilag_a: int | None = Field(description="new BILAG A domains vs baseline, if scored")
    new_bilag_b: int | None
    rule_version: str


class AutoantibodyResultV1(Contract):
    analyte: str = Field(examples=["anti_dsdna", "ana", "c3", "c4"])
    value: Decimal
    unit: str
    reference_low: Decimal | None
    reference_high: Decimal | None
    canonical_value: Decimal
    canonical_unit: str
    flag: str = Field(examples=["low", "normal", "high"])


class AutoantibodyMeasuredV1(EventData):
    event_type = "AutoantibodyMeasured.v1"
    study_day: int = StudyDay
    results: list[AutoantibodyResultV1]
    rule_version: str


class CarTKineticsMeasuredV1(EventData):
    event_type = "CarTKineticsMeasured.v1"
    study_day: int = StudyDay
    sample: str = Field(examples=["peripheral_blood", "bone_marrow"])
    method: str = Field(examples=["qpcr", "flow_cytometry"])
    target: str = Field(examples=["cd19", "bcma", "total"], description="CAR construct")
    value: Decimal
    unit: str = Field(examples=["copies/ug gDNA", "cells/uL"])
    lloq: Decimal = Field(description="lower limit of quantification, same unit")
    below_lloq: bool
    rule_version: str


class RemissionAssessedV1(EventData):
    """The response at a visit, derived by the rule set (signed by an investigator)."""

    event_type = "RemissionAssessed.v1"
    response: str = Field(examples=["complete", "partial", "stable", "progression"])
    remission: bool = Field(description="complete or partial")
    study_day: int = StudyDay
    visit_event_id: str
    previous_event_id: str | None
    baseline_event_id: str
    sledai_2k: int
    clinical_sledai: int
    baseline_sledai_2k: int
    doris: bool
    lldas: bool
    sri4: bool | None = Field(description="None: the visit has no BILAG scoring")
    rule_version: str


class ProgressionReportedV1(EventData):
    event_type = "ProgressionReported.v1"
    kind: str = Field(examples=["progression", "flare"])
    description: str = Field(min_length=1)
    study_day: int = StudyDay


ASSESSMENT_CONTRACTS = contract_registry(
    FollowUpStartedV1,
    DiseaseActivityAssessedV1,
    AutoantibodyMeasuredV1,
    CarTKineticsMeasuredV1,
    RemissionAssessedV1,
    ProgressionReportedV1,
)
