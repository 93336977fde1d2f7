"""HTTP API of the adverse-events service: parse, authorise, read the infusion view,
call the application. Signed steps carry an assertion whose purpose names the step, the
event and its current version (``adverse_events/<step>/<id>@<version>``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import FastAPI
from pydantic import Field

from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.dlt import DltCriterion
from services.adverse_events.domain import (
    CAUSALITY_SIGNATURE,
    DLT_SIGNATURE,
    GRADE_SIGNATURE,
    REVIEW_SIGNATURE,
    AdverseEvent,
    Relatedness,
    Seriousness,
    grading_of,
)
from services.adverse_events.escalation import DOSE_LEVELS
from services.adverse_events.grading import CrsInputs, IcansInputs
from services.adverse_events.views import InfusionView
from shared.kernel.envelope import Contract
from shared.kernel.provenance import Meaning
from shared.study import record_key
from shared.web.auth import SigningAssertion
from shared.web.inputs import IsoDate, IsoDateTime, Line, Paragraph, contract_of
from shared.web.service_app import (
    Act,
    Application,
    CommandAct,
    CommandRouter,
    Serving,
    from_state,
    in_thread,
)


class Report(Contract):
    term: Line = Field(min_length=1, examples=["Cytokine release syndrome"])
    verbatim: Paragraph = Field(min_length=1)
    meddra_code: Line | None = None
    onset_at: IsoDateTime


class CrsIn(contract_of(CrsInputs)): ...  # type: ignore[misc]


class IcansIn(contract_of(IcansInputs)): ...  # type: ignore[misc]


class SignatureIn(Contract):
    assertion: Paragraph


class Grade(Contract):
    """A CTCAE grade, or the ASTCT components of CRS or ICANS (the grade is computed; a
    different manual grade needs a reason)."""

    grade: int | None = None
    crs: CrsIn | None = None
    icans: IcansIn | None = None
    reason: Paragraph | None = None
    signature: SignatureIn


class Regrade(Grade):
    reason: Paragraph = Field(min_length=1)


class SeriousnessIn(Contract):
    death: bool = False
    life_threatening: bool = False
    hospitalisation: bool = False
    disability: bool = False
    congenital_anomaly: bool = False
    medically_important: bool = False


class Causality(Contract):
    car_t: Relatedness
    lymphodepletion: Relatedness
    signature: SignatureIn


class Dlt(Contract):
    is_dlt: bool
    criterion: DltCriterion | None = None
    reason: Paragraph = Field(min_length=1)
    signature: SignatureIn


class SafetyReviewIn(Contract):
    approved_level: int = Field(
        ge=DOSE_LEVELS[0],
        le=DOSE_LEVELS[-1],
        description="a dose level of the study's definition (a level the study does not "
        "have, or that its 3+3 state does not allow, is refused, 409)",
    )
    occurred_at: IsoDateTime | None = Field(
        None,
        description="when the review took place (clinical time; default now): every DLT "
        "window of the cohort reviewed must have closed by then, and no dose of the cohort "
        "it opens may be given before it",
    )
    dose_expansion: bool = Field(
        False,
        description="open the dose-expansion cohort at approved_level (a level 3+3 has "
        "cleared): as many subjects as bring the level to the design's total; escalation "
        "ends",
    )
    signature: SignatureIn


class Resolve(Contract):
    ended_on: IsoDate
    outcome: Line = Field(min_length=1, examples=["recovered"])


class AdverseEventOut(Contract):
    id: UUID
    subject_id: str
    term: str
    version: int
    study_day: int = Field(description="as recorded, counted in study_day_convention")
    study_day_convention: str = Field(examples=["infusion_day_0", "infusion_day_1"])
    treatment_emergent: bool
    in_dlt_window: bool
    grade: int | None
    scale: str | None
    serious: bool | None
    related: bool | None
    dlt: bool | None
    resolved_on: date | None
    signatures: list[dict[str, Any]]

    @classmethod
    def of(cls, r: AdverseEvent) -> AdverseEventOut:
        return cls(
            id=r.id, subject_id=r.subject_id, term=r.term, version=r.version,
            study_day=r.study_day, study_day_convention=r.study_day_convention.value,
            treatment_emergent=r.treatment_emergent,
            in_dlt_window=r.in_dlt_window,
            grade=None if r.grading is None else r.grading.grade,
            scale=None if r.grading is None else r.grading.scale,
            serious=None if r.seriousness is None else r.seriousness.serious,
            related=r.related, dlt=r.dlt, resolved_on=r.resolved_on,
            signatures=[s.manifestation() for s in r.signatures],
        )  # fmt: skip


DESCRIPTION = (
    "Adverse events: CTCAE v5.0 and ASTCT grading, causality, DLT adjudication, study day "
    "and TEAE windows, and the 3+3 dose escalation. Every route serves each study of the "
    "deployment under `/studies/{study_id}` (the unprefixed route: the first study's), and "
    "decides by that study's definition: its study-day convention, DLT and TEAE windows, DLT "
    "criteria, dose levels and 3+3 design. Refusals answer 4xx with a stable `code`."
)
router = CommandRouter("adverse_events")
Events = Application[AdverseEventsApplication]
Infusions = Annotated[InfusionView, from_state("view")]


def create_app(
    application: AdverseEventsApplication, view: InfusionView, serving: Serving
) -> FastAPI:
    return router.service_app(DESCRIPTION, application, serving, title="adverse events", view=view)


async def _signed(
    application: AdverseEventsApplication,
    act: Act,
    record_id: UUID,
    step: str,
    signature: SignatureIn,
    meaning: Meaning,
    allowed: Callable[[AdverseEvent], None] | None = None,
) -> tuple[AdverseEvent, SigningAssertion]:
    """The event as it is now, and the caller's assertion signing ``step`` of it. The
    event's state is checked first (``allowed``): a caller who lost a race is told what
    the winner did, not that the signature names the version before it. Another study's
    event is not found."""
    record = await asyncio.to_thread(application.get, record_id, act.caller.study_id)
    if allowed is not None:
        allowed(record)
    purpose = f"adverse_events/{step}/{record_id}@{record.version}"
    return record, act.signature(signature.assertion, meaning, purpose)


_out = partial(in_thread, AdverseEventOut.of)


def _grading(record: AdverseEvent, body: Grade) -> Any:
    crs = None if body.crs is None else CrsInputs(**body.crs.model_dump())
    icans = None if body.icans is None else IcansInputs(**body.icans.model_dump())
    return grading_of(record.term, body.grade, body.reason, crs, icans)


@router.command(
    "/subjects/{subject_id}/adverse-events", "report", status_code=201, tags=["adverse events"]
)
async def report(
    subject_id: str, body: Report, act: CommandAct, application: Events, view: Infusions
) -> AdverseEventOut:
    infused = await view.infused(record_key(act.caller.study_id, subject_id))
    return await _out(
        application.report, subject_id, infused, body.term, body.verbatim,
        body.meddra_code, body.onset_at, act.attribution,
    )  # fmt: skip


@router.command("/adverse-events/{record_id}/grade", "grade", tags=["adverse events"])
async def grade(
    record_id: UUID, body: Grade, act: CommandAct, application: Events
) -> AdverseEventOut:
    return await _graded(application, act, record_id, body)


@router.command("/adverse-events/{record_id}/regrade", "grade", tags=["adverse events"])
async def regrade(
    record_id: UUID, body: Regrade, act: CommandAct, application: Events
) -> AdverseEventOut:
    return await _graded(application, act, record_id, body)


async def _graded(
    application: AdverseEventsApplication, act: Act, record_id: UUID, body: Grade
) -> AdverseEventOut:
    """The event graded, or graded again with a reason (a ``Regrade``): each step signed."""
    regrade = isinstance(body, Regrade)
    step = "regrade" if regrade else "grade"
    allowed = None if regrade else AdverseEvent.check_ungraded
    record, assertion = await _signed(
        application, act, record_id, step, body.signature, GRADE_SIGNATURE, allowed
    )
    grading = _grading(record, body)
    if regrade:
        return await _out(
            application.regrade, record_id, grading, body.reason, act.attribution, assertion
        )
    return await _out(application.grade, record_id, grading, act.attribution, assertion)


@router.command(
    "/adverse-events/{record_id}/seriousness", "assess_seriousness", tags=["adverse events"]
)
async def seriousness(
    record_id: UUID, body: SeriousnessIn, act: CommandAct, application: Events
) -> AdverseEventOut:
    flags = Seriousness(**body.model_dump())
    return await _out(application.assess_seriousness, record_id, flags, act.attribution)


@router.command(
    "/adverse-events/{record_id}/causality", "assess_causality", tags=["adverse events"]
)
async def causality(
    record_id: UUID, body: Causality, act: CommandAct, application: Events
) -> AdverseEventOut:
    _, assertion = await _signed(
        application, act, record_id, "causality", body.signature, CAUSALITY_SIGNATURE
    )
    return await _out(
        application.assess_causality, record_id, body.car_t, body.lymphodepletion,
        act.attribution, assertion,
    )  # fmt: skip


@router.command("/adverse-events/{record_id}/dlt", "adjudicate_dlt", tags=["adverse events"])
async def dlt(record_id: UUID, body: Dlt, act: CommandAct, application: Events) -> AdverseEventOut:
    _, assertion = await _signed(application, act, record_id, "dlt", body.signature, DLT_SIGNATURE)
    return await _out(
        application.adjudicate_dlt, record_id, body.is_dlt, body.criterion, body.reason,
        act.attribution, assertion,
    )  # fmt: skip


@router.command("/adverse-events/{record_id}/resolution", "resolve", tags=["adverse events"])
async def resolve(
    record_id: UUID, body: Resolve, act: CommandAct, application: Events
) -> AdverseEventOut:
    return await _out(application.resolve, record_id, body.ended_on, body.outcome, act.attribution)


@router.query("/cohort", "read", tags=["dose escalation"])
async def cohort(act: CommandAct, application: Events, view: Infusions) -> dict[str, Any]:
    """The 3+3 state now: the level in play, the decision, the level the next subject
    may receive, subjects dosed, DLTs and open windows (rule version included), the levels
    3+3 has cleared, and, once a review opened it, the dose-expansion cohort's subjects."""
    study = act.caller.study_id
    infused = await view.all_infused(study)
    state = await asyncio.to_thread(application.cohort, infused, act.clock(), study)
    reviews = await asyncio.to_thread(application.reviews_so_far, study)
    return {**state.__dict__, "decision": state.decision.value, "reviews": reviews}


@router.command(
    "/safety-reviews", "approve_safety_review", status_code=201, tags=["dose escalation"]
)
async def approve_safety_review(
    body: SafetyReviewIn, act: CommandAct, application: Events, view: Infusions
) -> dict[str, Any]:
    """Approve the next cohort's level (signed, meaning approval; purpose
    ``adverse_events/safety-review/<number of this review>``)."""
    study = act.caller.study_id
    number = await asyncio.to_thread(application.reviews_so_far, study) + 1
    assertion = act.signature(
        body.signature.assertion, REVIEW_SIGNATURE,
        f"adverse_events/safety-review/{number}",
    )  # fmt: skip
    infused = await view.all_infused(study)
    review = await asyncio.to_thread(
        application.approve_safety_review, number, body.approved_level, infused,
        act.attribution, assertion, body.occurred_at, body.dose_expansion,
    )  # fmt: skip
    return {"id": str(review.id), "approved_level": review.approved_level, "review": number}


@router.query("/adverse-events/{record_id}", "read", tags=["adverse events"])
async def get(record_id: UUID, act: CommandAct, application: Events) -> AdverseEventOut:
    return await _out(application.get, record_id, act.caller.study_id)
