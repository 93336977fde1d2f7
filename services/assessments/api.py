"""HTTP API of the assessments service: parse, authorise, read the local views, call the
application. A remission is signed; its assertion's purpose names the step, the subject
and the record's current version (``assessments/remission/<subject>@<version>``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import FastAPI
from pydantic import Field

from services.assessments.application import AssessmentsApplication, study_rules
from services.assessments.domain import REMISSION_SIGNATURE, Progression, SubjectAssessments
from services.assessments.laboratory import (
    Analyte,
    Method,
    ReferenceRange,
    Sample,
    Target,
    autoantibody_result,
    kinetics_sample,
)
from services.assessments.rules import Activity, Response, items_from
from services.assessments.views import InfusionView, VitalStatusView
from shared.kernel.envelope import Contract
from shared.study import record_key
from shared.web.inputs import IsoDateTime, Line, Paragraph
from shared.web.service_app import (
    Act,
    CommandAct,
    CommandRouter,
    Record,
    Recorder,
    Serving,
    from_state,
)


class DiseaseActivityIn(Contract):
    """A visit: every SLEDAI-2K item present or absent (the score is computed)."""

    label: str = Field(min_length=1, max_length=60, examples=["month 3"])
    assessed_at: IsoDateTime
    items: dict[Line, bool] = Field(description="all 24 SLEDAI-2K items, by name")
    pga: Decimal = Field(description="physician's global assessment, 0-3")
    prednisone_mg_per_day: Decimal
    maintenance_immunosuppression_only: bool
    new_bilag_a: int | None = Field(None, description="new BILAG A domains vs baseline")
    new_bilag_b: int | None = None


class AutoantibodyIn(Contract):
    analyte: Analyte
    value: Decimal
    unit: Line = Field(examples=["IU/mL", "titre", "g/L", "mg/dL"])
    reference_low: Decimal | None = None
    reference_high: Decimal | None = None


class AutoantibodiesIn(Contract):
    sampled_at: IsoDateTime
    results: list[AutoantibodyIn] = Field(min_length=1)


class KineticsIn(Contract):
    sampled_at: IsoDateTime
    sample: Sample
    method: Method
    target: Target
    value: Decimal
    unit: Line = Field(examples=["copies/ug gDNA", "cells/uL"])
    lloq: Decimal


class SignatureIn(Contract):
    assertion: Paragraph


class RemissionIn(Contract):
    """The response claimed at a visit; refused unless the rule set derives it."""

    visit_event_id: UUID
    response: Response
    signature: SignatureIn


class ProgressionIn(Contract):
    kind: Progression
    description: str = Field(min_length=1, max_length=500)
    occurred_at: IsoDateTime


class AssessmentsOut(Contract):
    record_id: UUID
    subject_id: str
    version: int
    infused_at: datetime
    dose_level: int
    study_day_convention: str = Field(description="how the visits' study days are counted")
    visits: list[dict[str, Any]]
    remissions: dict[str, str]
    signatures: list[dict[str, Any]]

    @classmethod
    def of(cls, r: SubjectAssessments) -> AssessmentsOut:
        return cls(
            record_id=r.id, subject_id=r.subject_id, version=r.version,
            infused_at=r.infused_at, dose_level=r.dose_level,
            study_day_convention=study_rules(r.study_id).calendar.convention.value,
            visits=[
                {"event_id": key, "label": v.label, "study_day": v.study_day,
                 "sledai_2k": v.sledai_2k, "clinical_sledai": v.clinical_sledai}
                for key, v in r.visits.items()
            ],
            remissions={key: str(response) for key, response in r.remissions.items()},
            signatures=[s.manifestation() for s in r.signatures],
        )  # fmt: skip


DESCRIPTION = (
    "Efficacy and pharmacology: SLEDAI-2K visits, autoantibodies and complement, CAR-T "
    "kinetics, remission (DORIS, LLDAS, SRI-4) and progression, from the infusion. Every "
    "route serves each study of the deployment under `/studies/{study_id}` (the unprefixed "
    "route: the first study's); a subject's record is the study's own, and its study days "
    "are counted by the study's definition (its calendar)."
)
router = CommandRouter("assessments", tags=["assessments"])
Vital = Annotated[VitalStatusView, from_state("vital")]
# A subject's assessments go with what the local views know of the subject (create_app).
Records = Record[AssessmentsApplication, AssessmentsOut]


def create_app(
    application: AssessmentsApplication,
    infusions: InfusionView,
    vital: VitalStatusView,
    serving: Serving,
) -> FastAPI:
    known = (infusions.infused, vital.vital_status)
    recorder = Recorder(application, known, AssessmentsOut.of)
    return router.service_app(DESCRIPTION, application, serving, recorder=recorder, vital=vital)


async def _known(
    record: Records, act: Act, command: Any, subject_id: str, *args: Any
) -> AssessmentsOut:
    """``command`` for the subject in the caller's study, with what the views know of it:
    their rows are keyed by the records' Kafka keys, ``record_key(study, subject)``."""
    key = record_key(act.caller.study_id, subject_id)
    facts = [await know(key) for know in record.known]
    return await record.run(command, subject_id, *facts, *args)


@router.command("/subjects/{subject_id}/disease-activity", "assess_activity", status_code=201)
async def assess_activity(
    subject_id: str, body: DiseaseActivityIn, act: CommandAct, record: Records
) -> AssessmentsOut:
    activity = Activity(
        items_from(body.items), body.pga, body.prednisone_mg_per_day,
        body.maintenance_immunosuppression_only, body.new_bilag_a, body.new_bilag_b,
    )  # fmt: skip
    return await _known(
        record, act, AssessmentsApplication.assess_activity, subject_id, body.label, activity,
        body.assessed_at, act.attribution,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/autoantibodies", "record_measurement", status_code=201)
async def measure_autoantibodies(
    subject_id: str, body: AutoantibodiesIn, act: CommandAct, record: Records
) -> AssessmentsOut:
    results = tuple(
        autoantibody_result(
            r.analyte, r.value, r.unit, ReferenceRange(r.reference_low, r.reference_high)
        )
        for r in body.results
    )
    return await _known(
        record, act, AssessmentsApplication.measure_autoantibodies, subject_id, results,
        body.sampled_at, act.attribution,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/car-t-kinetics", "record_measurement", status_code=201)
async def measure_kinetics(
    subject_id: str, body: KineticsIn, act: CommandAct, record: Records
) -> AssessmentsOut:
    sample = kinetics_sample(
        body.sample, body.method, body.target, body.value, body.unit, body.lloq
    )
    return await _known(
        record, act, AssessmentsApplication.measure_kinetics, subject_id, sample,
        body.sampled_at, act.attribution,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/progression", "report_progression", status_code=201)
async def report_progression(
    subject_id: str, body: ProgressionIn, act: CommandAct, record: Records
) -> AssessmentsOut:
    return await _known(
        record, act, AssessmentsApplication.report_progression, subject_id, body.kind,
        body.description, body.occurred_at, act.attribution,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/remission", "assess_remission", status_code=201)
async def assess_remission(
    subject_id: str, body: RemissionIn, act: CommandAct, record: Records, vital: Vital
) -> AssessmentsOut:
    """Record the response at a visit, signed (meaning approval)."""
    study = act.caller.study_id
    current = await asyncio.to_thread(record.application.get, subject_id, study)
    current.check_unassessed(str(body.visit_event_id))
    assertion = act.signature(
        body.signature.assertion, REMISSION_SIGNATURE,
        f"assessments/remission/{subject_id}@{current.version}",
    )  # fmt: skip
    status = await vital.vital_status(record_key(study, subject_id))
    return await record.run(
        AssessmentsApplication.assess_remission, subject_id, status, str(body.visit_event_id),
        body.response, act.attribution, assertion,
    )  # fmt: skip


@router.query("/subjects/{subject_id}/assessments", "read")
async def get(subject_id: str, act: CommandAct, record: Records) -> AssessmentsOut:
    return await record.run(AssessmentsApplication.get, subject_id, act.caller.study_id)
