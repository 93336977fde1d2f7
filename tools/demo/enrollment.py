"""A subject's way from registration to the CAR-T infusion, through the enrollment and
infusion APIs, each step sent by the role that owns it and signed where it is signed."""

from __future__ import annotations

from typing import Any

from tools.demo.plan import SubjectPlan
from tools.demo.story import CONSENT_FORM, SITE
from tools.demo.team import PRINTED_NAMES, Team

# Codes a local view answers until it has read the upstream event (retried, not errors).
NOT_SEEN_YET = frozenset({"not_enrolled", "dose_level_not_allowed", "cohort_not_open"})


async def screen(team: Team, plan: SubjectPlan) -> dict[str, Any]:
    """Register, consent, screen, correct, and decide eligibility; the decision's record."""
    sid, e = plan.subject_id, plan.enrollment
    coordinator, sub_investigator = team.coordinator, team.sub_investigator
    base = f"/subjects/{sid}"
    await coordinator.post("enrollment", "/subjects", {
        "subject_id": sid, "site_id": SITE, "occurred_at": e.registered_at.isoformat(),
    }, correlation=sid)  # fmt: skip
    consent = {"form_version": CONSENT_FORM, "signed_on": e.consent_on.isoformat(),
               "obtained_by": PRINTED_NAMES["sub_investigator"],
               "occurred_at": e.registered_at.isoformat()}  # fmt: skip
    await sub_investigator.post("enrollment", f"{base}/consent", sub_investigator.signed(
        "responsibility", f"enrollment/consent/{sid}", consent), correlation=sid)  # fmt: skip
    await coordinator.post("enrollment", f"{base}/screening", {
        "screened_on": e.screened_at.date().isoformat(), "observations": e.observations,
        "occurred_at": e.screened_at.isoformat(),
    }, correlation=sid)  # fmt: skip
    if e.correction is not None:
        await coordinator.post("enrollment", f"{base}/corrections", {
            "field": e.correction.field, "new_value": e.correction.new_value,
            "reason": e.correction.reason,
        }, correlation=sid)  # fmt: skip
    investigator = team.investigator
    decision: dict[str, Any] = await investigator.post(
        "enrollment", f"{base}/eligibility",
        investigator.signed("approval", f"enrollment/eligibility/{sid}",
                            {"occurred_at": e.decided_at.isoformat()}),
        correlation=sid,
    )  # fmt: skip
    return decision


async def enrol(team: Team, plan: SubjectPlan) -> None:
    """Enrol at the subject's level, once the enrollment service has seen the safety
    review that opened it."""
    assert plan.level is not None and plan.enrollment.enrolled_at is not None  # noqa: S101
    body = {"dose_level": plan.level, "occurred_at": plan.enrollment.enrolled_at.isoformat()}
    await team.sub_investigator.post(
        "enrollment", f"/subjects/{plan.subject_id}/enrollment", body,
        retry=NOT_SEEN_YET, correlation=plan.subject_id,
    )  # fmt: skip


async def treat(team: Team, plan: SubjectPlan) -> None:
    """Leukapheresis, release of both lots, lymphodepletion and the signed infusion."""
    sid, t = plan.subject_id, plan.treatment
    assert t is not None  # noqa: S101  (only dosed subjects are treated)
    base = f"/subjects/{sid}"
    await team.coordinator.post("infusion", f"{base}/leukapheresis", {
        "performed_on": t.leukapheresis_on.isoformat(), "volume_ml": t.volume_ml,
    }, expect=(201,), retry=NOT_SEEN_YET, correlation=sid)  # fmt: skip
    for release in t.releases:
        await team.pharmacist.post("infusion", f"{base}/products", release, correlation=sid)
    await team.sub_investigator.post("infusion", f"{base}/lymphodepletion", t.lymphodepletion,
                                     correlation=sid)  # fmt: skip
    infusion = {
        "weight_kg": t.weight_kg,
        "lots": [{"lot_id": lot, "viable_car_positive_cells": str(n)} for lot, n in t.cells],
        "started_at": t.started_at.isoformat(),
        "ended_at": t.ended_at.isoformat(),
    }
    investigator = team.investigator
    await investigator.post(
        "infusion", f"{base}/infusion",
        investigator.signed("responsibility", f"infusion/infusion/{sid}", infusion),
        retry=NOT_SEEN_YET, correlation=sid,
    )  # fmt: skip
