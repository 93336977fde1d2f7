"""HTTP API of the infusion service: parse, authorise, read the enrollment view, call the
application. Endpoints raise infusion errors; ``shared.web.http`` maps them to coded 4xx."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import Field

from services.infusion.application import InfusionApplication
from services.infusion.domain import (
    INFUSION_SIGNATURE,
    AgentDose,
    InfusedLot,
    Infusion,
    Leukapheresis,
    Lymphodepletion,
    ProductRelease,
    Treatment,
)
from services.infusion.views import EnrollmentView
from shared.kernel.envelope import Contract
from shared.web.inputs import IsoDate, IsoDateTime, Line, Paragraph
from shared.web.service_app import (
    Application,
    Cohort,
    CohortSource,
    CommandAct,
    CommandRouter,
    Record,
    Recorder,
    Serving,
    in_thread,
    opening_of,
    plain,
)


class RecordLeukapheresis(Contract):
    performed_on: IsoDate
    volume_ml: Decimal = Field(gt=0)


class ReleaseProduct(Contract):
    lot_id: str = Field(min_length=1, max_length=64)
    product: Literal["CD19", "BCMA", "CD19/BCMA"]
    car_positive_percent: Decimal
    viability_percent: Decimal
    sterility_passed: bool
    release_tests_passed: bool
    released_on: IsoDate


class AgentDoseIn(Contract):
    agent: Line = Field(min_length=1, examples=["fludarabine", "cyclophosphamide"])
    dose_mg_per_m2: Decimal
    days: int = Field(ge=1, le=10)


class RecordLymphodepletion(Contract):
    agents: list[AgentDoseIn] = Field(min_length=1)
    started_on: IsoDate
    completed_on: IsoDate


class LotIn(Contract):
    lot_id: Line
    viable_car_positive_cells: Decimal = Field(description="viable CAR-positive cells infused")


class SignatureIn(Contract):
    """From the identity service's POST /signing, purpose ``infusion/infusion/<subject>``."""

    assertion: Paragraph


class Infuse(Contract):
    weight_kg: Decimal
    lots: list[LotIn] = Field(min_length=1)
    started_at: IsoDateTime
    ended_at: IsoDateTime
    signature: SignatureIn = Field(description=f"meaning: {INFUSION_SIGNATURE}")


class Reason(Contract):
    reason: str = Field(min_length=1, max_length=500)


class TreatmentOut(Contract):
    subject_id: str
    version: int
    leukapheresis: dict[str, Any]
    released_lots: list[str]
    lymphodepletion: dict[str, Any] | None
    infusion: dict[str, Any] | None
    not_given_reason: str | None
    signatures: list[dict[str, Any]]

    @classmethod
    def of(cls, t: Treatment) -> TreatmentOut:
        return cls(
            subject_id=t.subject_id,
            version=t.version,
            leukapheresis=plain(t.apheresis),
            released_lots=sorted(t.released),
            lymphodepletion=None if t.lymphodepletion is None else plain(t.lymphodepletion),
            infusion=None if t.infusion is None else plain(t.infusion),
            not_given_reason=t.not_given_reason,
            signatures=[s.manifestation() for s in t.signatures],
        )


DESCRIPTION = (
    "Leukapheresis, product release, lymphodepletion and the CAR-T infusion. Every route "
    "serves each study of the deployment under `/studies/{study_id}` (the unprefixed route: "
    "the first study's), and decides by that study's definition: its dose levels and doses, "
    "dose tolerance and lymphodepletion-to-infusion window. Refusals answer 4xx with a "
    "stable `code`."
)
router = CommandRouter("infusion", tags=["treatment"])
# Steps of a subject's treatment go with what the enrollment view knows of them (create_app).
Records = Record[InfusionApplication, TreatmentOut]
Infusions = Application[InfusionApplication]


def create_app(
    application: InfusionApplication,
    view: EnrollmentView,
    serving: Serving,
    cohort: CohortSource | None = None,
) -> FastAPI:
    """The infusion HTTP API; ``view`` is the local enrollment view, ``cohort`` the latest
    safety-review opening (without one, only the first cohort's)."""
    recorder = Recorder(application, (view.enrollment,), TreatmentOut.of)
    return router.service_app(DESCRIPTION, application, serving, recorder=recorder, cohort=cohort)


_call = partial(in_thread, TreatmentOut.of)


@router.command("/subjects/{subject_id}/leukapheresis", "record_leukapheresis", status_code=201)
async def record_leukapheresis(
    subject_id: str, body: RecordLeukapheresis, act: CommandAct, record: Records
) -> TreatmentOut:
    apheresis = Leukapheresis(body.performed_on, body.volume_ml)
    return await record(
        InfusionApplication.record_leukapheresis, subject_id, apheresis, act.attribution,
        study_id=act.caller.study_id,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/products", "release_product")
async def release_product(
    subject_id: str, body: ReleaseProduct, act: CommandAct, record: Records
) -> TreatmentOut:
    release = ProductRelease(**body.model_dump())
    return await record(
        InfusionApplication.release_product, subject_id, release, act.attribution,
        study_id=act.caller.study_id,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/lymphodepletion", "record_lymphodepletion")
async def record_lymphodepletion(
    subject_id: str, body: RecordLymphodepletion, act: CommandAct, record: Records
) -> TreatmentOut:
    agents = tuple(AgentDose(a.agent, a.dose_mg_per_m2, a.days) for a in body.agents)
    regimen = Lymphodepletion(agents, body.started_on, body.completed_on)
    return await record(
        InfusionApplication.record_lymphodepletion, subject_id, regimen, act.attribution,
        study_id=act.caller.study_id,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/infusion", "infuse")
async def infuse(
    subject_id: str, body: Infuse, act: CommandAct, record: Records, cohort: Cohort
) -> TreatmentOut:
    """The CAR-T infusion: released lots, the assigned dose within tolerance, signed."""
    assertion = act.signature(
        body.signature.assertion, INFUSION_SIGNATURE, f"infusion/infusion/{subject_id}"
    )
    infusion = Infusion(
        body.weight_kg,
        tuple(InfusedLot(lot.lot_id, lot.viable_car_positive_cells) for lot in body.lots),
        body.started_at,
        body.ended_at,
        act.caller.principal.printed_name,
    )
    opening = await opening_of(cohort, act.caller.study_id)
    return await record(
        InfusionApplication.infuse, subject_id, infusion, act.attribution, assertion, opening,
        study_id=act.caller.study_id,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/infusion-not-given", "decline_infusion")
async def decline_infusion(
    subject_id: str, body: Reason, act: CommandAct, application: Infusions
) -> TreatmentOut:
    return await _call(application.decline_infusion, subject_id, body.reason, act.attribution)


@router.command("/subjects/{subject_id}/infusion-interruptions", "interrupt_infusion")
async def interrupt_infusion(
    subject_id: str, body: Reason, act: CommandAct, application: Infusions
) -> TreatmentOut:
    return await _call(application.interrupt_infusion, subject_id, body.reason, act.attribution)


@router.query("/subjects/{subject_id}", "read_treatment")
async def get_treatment(subject_id: str, act: CommandAct, application: Infusions) -> TreatmentOut:
    return await _call(application.get_treatment, subject_id, act.caller.study_id)
