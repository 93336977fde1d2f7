"""HTTP read API for auditors and monitors: trail, subject state "as of", verification,
proofs and exports. Tokens are checked here; the application checks roles and records
every query, refused ones too.

Every route is served twice: as before, for the deployment's first study's ledger, and
under ``/studies/<id>`` for that study's ledger (``services.projections.studies``). A
token is for one study (``shared.web.http.study_not_granted``): a token for another study
than the path's is refused, 403 ``study_not_granted``, and the refusal recorded in the
activity of the ledger it asked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute

from services.projections.application import READERS, ProjectionsApplication, TrailFilter
from services.projections.config import ConsoleConfig
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import Principal, TokenVerifier
from shared.web.http import (
    STUDY_ANSWERS,
    Gate,
    StudyNotServed,
    bearer_token,
    document_roles,
    error_responses,
    install_error_mapping,
    path_study,
    study_not_granted,
)
from shared.web.inputs import BIGINT_MAX, IsoDateTime
from shared.web.service_app import STUDY_PREFIX, FromState, served_study


async def _principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer access token")] = None,
) -> Principal:
    """The caller, once their access is confirmed not withdrawn (as every service's)."""
    return await admitted(request, bearer_token(authorization))


async def admitted(request: Request, token: str) -> Principal:
    """The holder of ``token`` (a header's or the console's cookie's), once their access
    is confirmed not withdrawn (401 ``token_revoked``, 503 ``revocations_unconfirmed``)
    and their token is for the study whose ledger the path names (403 ``study_not_granted``,
    recorded in that ledger's auditor activity)."""
    principal = await holder(request, token)
    route = request.scope.get("route")
    command = f"projections.{getattr(route, 'name', 'read')}"
    if (refused := study_not_granted(principal, request, command)) is not None:
        await ledger_of(request).refuse_study(principal, command, path_study(request))
        raise refused
    return principal


async def holder(request: Request, token: str) -> Principal:
    """The holder of ``token``, once their access is confirmed not withdrawn, whichever
    study the token is for (the console reads the ledger of its token's study)."""
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.principal(token)
    revocations: Gate | None = request.app.state.revocations
    if revocations is not None:
        await revocations.admit(principal)
    return principal


def study_application(request: Request, study: str) -> ProjectionsApplication:
    """The application over ``study``'s ledger (404 ``study_not_served``)."""
    applications: Mapping[str, ProjectionsApplication] = request.app.state.applications
    if study not in applications:
        raise StudyNotServed(f"study {study} is not served here", study_id=study,
                             served=list(applications))  # fmt: skip
    return applications[study]


Auditor = Annotated[Principal, Depends(_principal)]
# A ledger position or tree size: 1, 2, 3 ... up to what the ledger's bigint holds.
Position = Annotated[int, Ge(1), Le(BIGINT_MAX)]


@dataclass(frozen=True)
class Moment:
    """Where in the ledger a view is read: as of a time, or of a position (neither: now)."""

    as_of: datetime | None
    position: int | None


async def _moment(as_of: IsoDateTime | None = None, position: Position | None = None) -> Moment:
    return Moment(as_of, position)


AsOf = Annotated[Moment, Depends(_moment)]


def _reads(route: APIRoute) -> bool:
    """Whether the operation needs an auditor's or a monitor's token."""
    return any(dependency.call is _principal for dependency in route.dependant.dependencies)


def ledger_of(request: Request) -> ProjectionsApplication:
    """The application over the ledger of the study the path names (the first study's
    without the ``/studies/<id>`` prefix)."""
    # ``served_study`` answers first, on a prefixed route
    return study_application(request, path_study(request))


class StudyLedger(FromState):
    """A dependency: of what the app holds, the application over the ledger of the study
    the path names (``ledger_of``)."""

    def __init__(self) -> None:
        super().__init__("applications")

    async def __call__(self, request: Request) -> ProjectionsApplication:
        return ledger_of(request)


router = APIRouter()
Ledger = Annotated[ProjectionsApplication, Depends(StudyLedger())]


def create_app(
    application: ProjectionsApplication,
    verifier: TokenVerifier,
    revocations: Gate | None = None,
    console: ConsoleConfig | None = None,
    studies: Mapping[str, ProjectionsApplication] | None = None,
) -> FastAPI:
    """The auditor API of the first study's ``application``, and under ``/studies/<id>``
    of each study's of ``studies`` (by study id; the first study's is ``application``);
    with ``console``, the auditor's console (the first study's) under ``/console/`` too."""
    app = FastAPI(
        title="Trial Ledger: projections (auditor API)",
        version="1",
        description="The tamper-evident ledger, its views and proofs. Auditors and monitors "
        "only; every query is recorded.",
        responses=error_responses({401, 403, 404, 409, 503}),
    )
    install_error_mapping(app, forms=("/console/",))
    document_roles(app, lambda route: READERS if _reads(route) else None)
    app.state.verifier = verifier
    app.state.revocations = revocations  # None: an app built alone, in tests
    app.state.application = application
    others = {study: a for study, a in (studies or {}).items() if study != DEFAULT_STUDY_ID}
    app.state.applications = {DEFAULT_STUDY_ID: application, **others}
    app.state.studies = tuple(app.state.applications)
    app.get("/health", tags=["operations"])(health)  # on the app: instrument() looks for it
    app.include_router(router)
    app.include_router(router, prefix=STUDY_PREFIX, dependencies=[Depends(served_study)],
                       responses=STUDY_ANSWERS)  # fmt: skip
    if console is not None:
        from services.projections import console as pages  # its routes use admitted()

        pages.install(app, console)
    return app


async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/trail", tags=["audit"])
async def trail(
    application: Ledger,
    who: Auditor,
    subject_id: str | None = None,
    user_id: str | None = None,
    record_id: str | None = None,
    event_type: str | None = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    role: Annotated[str | None, Query(description="the role the actor acted in")] = None,
    reason: Annotated[
        str | None, Query(description="rows whose reason contains this text (any case)")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX, description="rows skipped")] = 0,
) -> list[dict[str, Any]]:
    """Audit-trail rows in ledger order, filtered; ``limit`` and ``offset`` page them."""
    filters = TrailFilter(
        subject_id, user_id, record_id, event_type, since, until, limit, role, reason, offset
    )
    return await application.trail(who, filters)


@router.get("/account-review", tags=["audit"])
async def account_review(
    application: Ledger, who: Auditor, user_id: str | None = None
) -> dict[str, Any]:
    """The account and role history from the ledger: every account created, role granted or
    revoked, account deactivated, locked or unlocked, password changed, and every refused
    account change, with who did it, when and why (``user_id``: that account's, and those
    it made or tried); and the accounts that hold roles that may not be held together."""
    return await application.account_review(who, user_id)


@router.get("/subjects/{subject_id}", tags=["audit"])
async def subject(
    application: Ledger,
    who: Auditor,
    subject_id: str,
    when: AsOf,
) -> dict[str, Any]:
    state = await application.subject(who, subject_id, when.as_of, when.position)
    return state or {}


@router.get("/trial", tags=["audit"])
async def trial(application: Ledger, who: Auditor) -> dict[str, Any]:
    """DLTs per dose level, TEAE incidence and every cohort decision."""
    return await application.trial(who)


@router.get("/endpoints", tags=["endpoints"])
async def endpoints(application: Ledger, who: Auditor, when: AsOf) -> dict[str, Any]:
    """DLT rate per dose level, TEAE incidence, objective response within the study's
    response window, disease control from its first disease-control day, remission and
    SLEDAI-2K change at its named visits, duration of remission, PFS and OS
    (Kaplan-Meier), and each subject's autoantibody and kinetics time courses, from the
    study's ledger as of a time or position, by the study's definition (its calendar and
    visits; the figures' names are fixed). Every figure lists its subjects and ledger
    entries."""
    return await application.endpoints(who, when.as_of, when.position)


@router.get("/plots/swimmer.svg", tags=["endpoints"], response_class=Response)
async def swimmer(application: Ledger, who: Auditor, when: AsOf) -> Response:
    svg = await application.plot(who, "swimmer", when.as_of, when.position)
    return Response(svg, media_type="image/svg+xml")


@router.get("/plots/kinetics/{subject_id}.svg", tags=["endpoints"], response_class=Response)
async def kinetics(application: Ledger, who: Auditor, subject_id: str, when: AsOf) -> Response:
    svg = await application.plot(who, f"kinetics/{subject_id}", when.as_of, when.position)
    return Response(svg, media_type="image/svg+xml")


@router.get("/verify", tags=["integrity"])
async def verify(
    application: Ledger,
    who: Auditor,
    request: Request,
    stores: Annotated[
        bool, Query(description="also name every stored event missing from the ledger")
    ] = True,
    witness: Annotated[
        str | None,
        Query(
            description="a witness's cosignature vkey: check the ledger against the "
            "checkpoints it cosigned (and the newest it holds, when it is TL_WITNESS_URL's)",
            max_length=500,
        ),
    ] = None,
) -> dict[str, object]:
    """The ledger's hashes, Merkle root and signed checkpoints; and, unless
    ``stores=false``, each service's store against the ledger (read with the
    caller's own token): every event stored but missing, by service, store position
    and event id; with ``witness``, rollbacks, deleted checkpoints and rewritten
    entries older than that witness's newest cosignature."""
    token = bearer_token(request.headers.get("authorization")) if stores else None
    trust = None if witness is None else application.witness_trust(witness)
    return (await application.verify(who, token=token, witness=trust)).to_json()


@router.get("/reconcile", tags=["integrity"])
async def reconcile(application: Ledger, who: Auditor, request: Request) -> dict[str, Any]:
    """Every stored event of every service exactly once in the ledger, byte for byte,
    and nothing else (the stores read through their services' APIs)."""
    return await application.reconcile(who, bearer_token(request.headers.get("authorization")))


@router.get("/proofs/inclusion/{position}", tags=["integrity"])
async def inclusion(application: Ledger, who: Auditor, position: Position) -> dict[str, Any]:
    return await application.inclusion_proof(who, position)


@router.get("/proofs/consistency", tags=["integrity"])
async def consistency(
    application: Ledger, who: Auditor, old_size: Position, new_size: Position | None = None
) -> dict[str, Any]:
    """An RFC 6962 consistency proof between two tree sizes within the latest signed
    checkpoint (``new_size``: the latest checkpoint's size by default)."""
    return await application.consistency_proof(who, old_size, new_size)


@router.get("/checkpoint", tags=["integrity"], response_class=PlainTextResponse)
async def checkpoint(
    application: Ledger,
) -> PlainTextResponse:
    """The latest checkpoint: a C2SP signed note (c2sp.org/tlog-checkpoint) naming the
    ledger's origin, its size and its base64 root. Public, as a transparency log's
    checkpoints are: witnesses and monitors read it without an account."""
    return PlainTextResponse(await application.checkpoint_note())


@router.get("/checkpoints", tags=["integrity"])
async def checkpoints(
    application: Ledger,
    after: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Signed checkpoints after size ``after``, oldest first, with the ledger's origin
    and verifier keys (public)."""
    return await application.checkpoint_history(after, limit)


@router.get("/export", tags=["audit"], response_model=dict[str, Any])
async def export(application: Ledger, who: Auditor, subject_id: str | None = None) -> Response:
    # the whole ledger's JSON: written in the reports' thread, not by FastAPI on the loop
    body = await application.export_json(who, subject_id)
    return Response(body, media_type="application/json")


@router.get(
    "/export/odm",
    tags=["audit"],
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "ODM 1.3.2 XML"}},
)
async def export_odm(application: Ledger, who: Auditor, when: AsOf) -> Response:
    """The trial as CDISC ODM 1.3.2 (docs/exports.md): a form per event type, every
    subject's events with an audit record on each value (who, site, UTC time, reason,
    ledger position and event id) and each Part 11 signature, from the ledger now, as of
    a time or at a position. Recorded as an export."""
    xml = await application.odm(who, when.as_of, when.position)
    return Response(xml, media_type="application/xml")
