"""HTTP API of the enrollment service: parse, identify the actor, call the application.

Endpoints raise enrollment errors; ``shared.web.http`` turns them into coded 4xx answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import FastAPI, Request
from pydantic import Field, JsonValue, StrictBool, ValidationError

from services.enrollment import errors
from services.enrollment.application import EnrollmentApplication
from services.enrollment.domain import (
    CONSENT_SIGNATURE,
    ELIGIBILITY_SIGNATURE,
    Consent,
    CorrectedValue,
    Screening,
    Subject,
)
from services.enrollment.rules import (
    Criterion,
    Kind,
    Observation,
    ObservedValue,
    eligibility_rules,
)
from shared.kernel.envelope import Contract
from shared.kernel.provenance import Meaning
from shared.study import study_definition
from shared.web.auth import SigningAssertion
from shared.web.http import path_study
from shared.web.inputs import IsoDate, IsoDateTime, Line, Paragraph, iso_date
from shared.web.service_app import (
    Act,
    Application,
    Cohort,
    CohortSource,
    CommandAct,
    CommandRouter,
    Serving,
    in_thread,
    opening_of,
    plain,
)


def signing_purpose(step: str, subject_id: str) -> str:
    """What a signing assertion must name to sign ``step`` of a subject's record."""
    return f"enrollment/{step}/{subject_id}"


class SignatureIn(Contract):
    """An electronic signature: the assertion from the identity service's POST /signing,
    requested with purpose ``enrollment/consent/<subject id>`` or
    ``enrollment/eligibility/<subject id>``."""

    assertion: Paragraph


Text = Annotated[str, Field(min_length=1, max_length=200)]


# --- requests ----------------------------------------------------------------------------


class RegisterSubject(Contract):
    subject_id: Line = Field(examples=["S-001"])
    site_id: Text
    occurred_at: IsoDateTime | None = None


class SignConsent(Contract):
    form_version: Text
    signed_on: IsoDate
    obtained_by: Text = Field(description="who obtained consent (name or user id)")
    occurred_at: IsoDateTime | None = None
    signature: SignatureIn = Field(description=f"meaning: {CONSENT_SIGNATURE}")


class ObservationIn(Contract):
    value: StrictBool | Decimal | Line | None = Field(
        description="a number for quantities, true/false for flags, a category name, "
        "or an ISO date (null: never) for the last systemic steroid dose"
    )
    unit: Line | None = None
    upper_limit_normal: Decimal | None = None
    observed_on: IsoDate

    def to_domain(self, code: str, criteria: Mapping[str, Criterion]) -> Observation:
        """The observation of criterion ``code`` of ``criteria`` (the study's)."""
        criterion = criteria.get(code)
        value: ObservedValue = self.value
        if criterion and isinstance(value, str):
            value = _parsed(value, criterion.kind)
        return Observation(value, self.observed_on, self.unit, self.upper_limit_normal)


def _parsed(text: str, kind: Kind) -> ObservedValue:
    """Numbers and dates may come as strings (exact decimals); others stay as sent."""
    try:
        if kind in (Kind.QUANTITY, Kind.RATIO_TO_ULN):
            return Decimal(text)
        if kind is Kind.LAST_DOSE_DATE:
            return iso_date(text)
    except (InvalidOperation, ValueError):
        pass  # the domain refuses it, naming the criterion and the value
    return text


class RecordScreening(Contract):
    screened_on: IsoDate
    observations: dict[Line, ObservationIn] = Field(
        description="one entry per criterion code of GET /eligibility-criteria"
    )
    occurred_at: IsoDateTime | None = None


class DecideEligibility(Contract):
    occurred_at: IsoDateTime | None = None
    signature: SignatureIn = Field(description=f"meaning: {ELIGIBILITY_SIGNATURE}")


class Enrol(Contract):
    dose_level: int = Field(
        description="a dose level of the study's definition (its dose, in x10^6 CAR-T "
        "cells/kg, is the study's; the published contract allows levels 1-4)"
    )
    occurred_at: IsoDateTime | None = None


class Withdraw(Contract):
    reason: Text
    occurred_at: IsoDateTime | None = None


class Death(Contract):
    cause: Text
    adverse_event_id: Line | None = Field(None, description="the adverse event it followed")
    occurred_at: IsoDateTime | None = None


class CorrectValue(Contract):
    field: Line = Field(examples=["screening.creatinine", "consent.form_version"])
    new_value: JsonValue
    reason: Text


# --- responses ---------------------------------------------------------------------------


class CriterionOut(Contract):
    code: str
    text: str
    inclusion: bool
    kind: str
    requirement: str
    unit: str | None
    accepted_units: list[str]
    categories: list[str]


class EligibilityCriteriaOut(Contract):
    rule_version: str
    criteria: list[CriterionOut]


class SubjectOut(Contract):
    subject_id: str
    site_id: str
    status: str
    version: int
    consent: dict[str, Any] | None
    screening: dict[str, Any] | None
    eligibility: dict[str, Any] | None
    dose_level: int | None
    withdrawal_reason: str | None
    signatures: list[dict[str, Any]] = Field(
        description="signature manifestations: signer, printed name, meaning, UTC time"
    )

    @classmethod
    def of(cls, subject: Subject) -> SubjectOut:
        assessment = subject.assessment
        return cls(
            subject_id=subject.subject_id,
            site_id=subject.site_id,
            status=str(subject.status),
            version=subject.version,
            consent=plain(subject.consent),
            screening=plain(subject.screening),
            eligibility=None
            if assessment is None
            else {
                "rule_version": assessment.rule_version,
                "eligible": assessment.eligible,
                "failed_criteria": list(assessment.failed_criteria),
                "results": [plain(result) for result in assessment.results],
            },
            dose_level=None if subject.dose_level is None else int(subject.dose_level),
            withdrawal_reason=subject.withdrawal_reason,
            signatures=[s.manifestation() for s in subject.signatures],
        )


# --- the app -----------------------------------------------------------------------------


DESCRIPTION = (
    "Registration, consent, screening, eligibility, enrollment, withdrawal, death and "
    "corrections. Every route serves each study of the deployment under `/studies/{study_id}` "
    "(the unprefixed route: the first study's), and decides by that study's definition: its "
    "eligibility criteria, units and limits (`GET /studies/{study_id}/eligibility-criteria`) "
    "and its dose levels. Refusals answer 4xx with a stable `code`."
)
router = CommandRouter("enrollment")
Enrollment = Application[EnrollmentApplication]


def create_app(
    application: EnrollmentApplication, serving: Serving, cohort: CohortSource | None = None
) -> FastAPI:
    """The enrollment HTTP API over ``application``, ``serving`` it (its outbox is read by
    auditors: ``shared.web.store_api``); ``cohort`` tells which dose level is open (without
    one, only the first cohort's)."""
    return router.service_app(DESCRIPTION, application, serving, cohort=cohort)


def criteria_of(study_id: str) -> Mapping[str, Criterion]:
    """The eligibility criteria of the study a request acts in, by code."""
    return eligibility_rules(study_definition(study_id)).by_code


@router.get("/eligibility-criteria", tags=["reference"])
def eligibility_criteria(request: Request) -> EligibilityCriteriaOut:
    """The study's criteria (its definition's), as this rule version evaluates them."""
    # the route's study's: ``/studies/<id>/eligibility-criteria``, else the first study's
    rules = eligibility_rules(study_definition(path_study(request)))
    return EligibilityCriteriaOut(
        rule_version=rules.rule_version,
        criteria=[
            CriterionOut(
                code=c.code,
                text=c.text,
                inclusion=c.inclusion,
                kind=c.kind.value,
                requirement=c.describe(),
                unit=c.unit,
                accepted_units=[u.label for u in c.units],
                categories=sorted(c.categories),
            )
            for c in rules.criteria
        ],
    )


@router.command("/subjects", "register_subject", status_code=201, tags=["subjects"])
def register_subject(body: RegisterSubject, act: CommandAct, application: Enrollment) -> SubjectOut:
    subject = application.register_subject(
        body.subject_id, body.site_id, act.attribution, body.occurred_at
    )
    return SubjectOut.of(subject)


@router.query("/subjects/{subject_id}", "read_subject", tags=["subjects"])
def get_subject(subject_id: str, act: CommandAct, application: Enrollment) -> SubjectOut:
    return SubjectOut.of(application.get_subject(subject_id, act.caller.study_id))


@router.command("/subjects/{subject_id}/consent", "sign_consent", tags=["subjects"])
def sign_consent(
    subject_id: str, body: SignConsent, act: CommandAct, application: Enrollment
) -> SubjectOut:
    consent = Consent(body.form_version, body.signed_on, body.obtained_by)
    assertion = _signed(act, body.signature, CONSENT_SIGNATURE, "consent", subject_id)
    return SubjectOut.of(
        application.sign_consent(subject_id, consent, act.attribution, assertion, body.occurred_at)
    )


@router.command("/subjects/{subject_id}/screening", "record_screening", tags=["subjects"])
def record_screening(
    subject_id: str, body: RecordScreening, act: CommandAct, application: Enrollment
) -> SubjectOut:
    criteria = criteria_of(act.caller.study_id)
    observations = {code: o.to_domain(code, criteria) for code, o in body.observations.items()}
    screening = Screening(body.screened_on, observations)
    subject = application.record_screening(subject_id, screening, act.attribution, body.occurred_at)
    return SubjectOut.of(subject)


@router.command("/subjects/{subject_id}/eligibility", "decide_eligibility", tags=["subjects"])
def decide_eligibility(
    subject_id: str, body: DecideEligibility, act: CommandAct, application: Enrollment
) -> SubjectOut:
    assertion = _signed(act, body.signature, ELIGIBILITY_SIGNATURE, "eligibility", subject_id)
    return SubjectOut.of(
        application.decide_eligibility(subject_id, act.attribution, assertion, body.occurred_at)
    )


@router.command("/subjects/{subject_id}/enrollment", "enrol", tags=["subjects"])
# The path as first published, kept so that clients written against it keep working;
# the project spells the word "enrollment" everywhere else (tests/docs/test_spelling.py).
@router.command("/subjects/{subject_id}/enrolment", "enrol", tags=["subjects"], deprecated=True)
async def enrol(
    subject_id: str, body: Enrol, act: CommandAct, application: Enrollment, cohort: Cohort
) -> SubjectOut:
    """Enrol at the level the study's latest safety review opened (before any: the study's
    first level)."""
    opening = await opening_of(cohort, act.caller.study_id)
    return await in_thread(
        SubjectOut.of, application.enrol, subject_id, body.dose_level, act.attribution,
        body.occurred_at, opening.level,
    )  # fmt: skip


@router.command("/subjects/{subject_id}/withdrawal", "withdraw", tags=["subjects"])
def withdraw(
    subject_id: str, body: Withdraw, act: CommandAct, application: Enrollment
) -> SubjectOut:
    return SubjectOut.of(
        application.withdraw(subject_id, body.reason, act.attribution, body.occurred_at)
    )


@router.command("/subjects/{subject_id}/death", "record_death", tags=["subjects"])
def record_death(
    subject_id: str, body: Death, act: CommandAct, application: Enrollment
) -> SubjectOut:
    subject = application.record_death(
        subject_id, body.cause, body.adverse_event_id, act.attribution, body.occurred_at
    )
    return SubjectOut.of(subject)


@router.command("/subjects/{subject_id}/corrections", "correct_value", tags=["subjects"])
def correct_value(
    subject_id: str, body: CorrectValue, act: CommandAct, application: Enrollment
) -> SubjectOut:
    new_value = _corrected_value(body.field, body.new_value, criteria_of(act.caller.study_id))
    return SubjectOut.of(
        application.correct_value(subject_id, body.field, new_value, body.reason, act.attribution)
    )


def _signed(
    act: Act, signature: SignatureIn, meaning: Meaning, step: str, subject_id: str
) -> SigningAssertion:
    """The caller's assertion signing ``step`` of the subject's record (``signing_purpose``)."""
    return act.signature(signature.assertion, meaning, signing_purpose(step, subject_id))


def _corrected_value(
    field: str, raw: JsonValue, criteria: Mapping[str, Criterion]
) -> CorrectedValue:
    """Parse a correction's new value into the type of the field it corrects (a screening
    value: of a criterion of the study's ``criteria``)."""
    section, _, name = field.partition(".")
    try:
        if section == "screening" and name in criteria:
            return ObservationIn.model_validate(raw).to_domain(name, criteria)
        if name in ("signed_on", "screened_on"):
            return iso_date(raw)
    except (ValidationError, ValueError) as error:
        raise errors.InvalidCorrectionValue(
            f"new value for {field} is not valid: {error}", field=field
        ) from None
    if not isinstance(raw, str) or not raw.strip():
        raise errors.InvalidCorrectionValue(f"new value for {field} must be text", field=field)
    return raw.strip()
