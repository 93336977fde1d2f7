"""HTTP plumbing shared by the services: error mapping, authorisation, correlation.

Errors become responses in one registry keyed by exception class (the most specific
registered base wins); endpoints raise, they never build error responses by hand.
Every error body is ``{"code", "message", "details"}`` with a stable ``code``: the
services' refusals, the framework's own answers and bad input (``shared.web.inputs``) alike.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.kernel import errors as refusals
from shared.kernel.access import Denial
from shared.kernel.logs import current_correlation_id
from shared.kernel.permissions import ServiceTable
from shared.kernel.principals import StudyNotGranted
from shared.kernel.provenance import Actor, Attribution, Provenance
from shared.kernel.records import SignatureNotForThisRecord
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import (
    Forbidden,
    Meaning,
    Principal,
    Role,
    SignatureRefused,
    SigningAssertion,
    TokenVerifier,
    Unauthenticated,
    check_assertion,
)
from shared.web.inputs import MAX_BODY_BYTES, InputGuard

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every error answer (4xx, and 5xx should one happen)."""

    code: str
    message: str
    details: dict[str, Any] = {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The one shape of an error answer: ``ErrorBody`` with ``status``."""
    body = ErrorBody(code=code, message=message, details=details or {})
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


# The one table from a family of refusals to its HTTP status: the most specific registered
# base of an exception decides. A service declares its refusals in these families
# (``shared.kernel.errors``), never a status of its own.
STATUSES: Mapping[type[Exception], int] = {
    refusals.Refusal: 400,  # of no family (a test refuses such a refusal in services/)
    refusals.CredentialsRefused: 401,
    Unauthenticated: 401,
    Forbidden: 403,
    refusals.NotPermitted: 403,
    SignatureRefused: 403,
    refusals.NotFound: 404,
    refusals.OutOfSequence: 409,
    refusals.Locked: 423,
    refusals.Damaged: 409,
    refusals.InvalidValue: 422,
    refusals.Throttled: 429,
    refusals.Overloaded: 503,
    SignatureNotForThisRecord: 422,
    # the event store is down or unreachable: retry later, nothing was recorded
    OperationalError: 503,
    InterfaceError: 503,
    # a stale save that no application path decided again: nothing was recorded
    IntegrityError: 409,
}


def status_of(error: type[Exception]) -> int | None:
    """The status of ``error``'s most specific registered base (None: none is)."""
    registered = family_of(error)
    return None if registered is None else STATUSES[registered]


def family_of(error: type[Exception]) -> type[Exception] | None:
    """The most specific base of ``error`` that ``STATUSES`` registers, if any."""
    return next((cls for cls in error.__mro__ if cls in STATUSES), None)


def install_error_mapping(app: FastAPI, forms: tuple[str, ...] = ()) -> None:
    """Answer every exception of a registered class (``STATUSES``) with its status and a
    coded body; and every other error too: invalid requests (422), the framework's own
    answers (404 no such path, 405 method not allowed ...), unreadable input
    (``shared.web.inputs``: 413, 415, 422), and an unexpected failure (500).

    Exceptions need ``code``, ``message`` and ``details`` attributes. ``forms``: path
    prefixes that also take HTML forms (``InputGuard``).
    """
    registry = STATUSES

    async def handle(request: Request, error: Exception) -> Response:
        registered = family_of(type(error))
        assert registered is not None  # noqa: S101 (handlers are registered per class)
        status = registry[registered]
        code = getattr(error, "code", None) or _CODES_BY_STATUS.get(status, "error")
        if registered is IntegrityError:
            # the safety net caught it: the command's save path should reload and re-decide
            log.warning("save conflict not decided again path=%s", request.url.path)
        log.info(
            "command refused path=%s status=%d code=%s correlation_id=%s",
            request.url.path,
            status,
            code,
            request.headers.get("x-correlation-id"),
        )
        message = getattr(error, "message", None) or _LIBRARY_MESSAGES.get(registered) or str(error)
        details = getattr(error, "details", {})
        return error_response(status, code, message, details, retry_after(details))

    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)  # noqa: S101
        details = {"errors": _plain_errors(error)}
        return error_response(422, "invalid_request", _INVALID, details)

    async def framework_answer(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)  # noqa: S101
        status = error.status_code
        code = _CODES_BY_STATUS.get(status, "bad_request" if status < 500 else "error")
        return error_response(status, code, str(error.detail), headers=error.headers)

    async def failure(request: Request, error: Exception) -> Response:
        # Starlette logs the exception after this answer; the client gets no traceback.
        return error_response(500, "internal_error", _FAILED)

    for cls in registry:
        app.add_exception_handler(cls, handle)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, framework_answer)
    app.add_exception_handler(Exception, failure)
    app.add_middleware(InputGuard, answer=error_response, forms=forms)


_INVALID = "the request does not match the command's schema"
_FAILED = "the service failed unexpectedly (it is logged): read the record back before retrying"
_CODES_BY_STATUS = {
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    503: "service_unavailable",
}
# Said instead of a library error's own text, which names tables and keys.
_LIBRARY_MESSAGES: dict[type[Exception], str] = {
    IntegrityError: "the record changed while this command was decided; nothing was "
    "recorded: read it again and retry",
}
# Answers any operation may give, whatever its own refusals (install_error_mapping).
_EDGE_ANSWERS = {
    401: "Not authenticated: no access token, or a forged, expired or wrong-kind one "
    "(`unauthenticated`), or one whose access was withdrawn since it was issued "
    "(`token_revoked`: the account locked or deactivated, a role of the token revoked, or "
    "its session logged out; log in again); at identity's `/login` and `/password`, "
    "wrong credentials",
    413: f"Body too large: over {MAX_BODY_BYTES} bytes (`body_too_large`)",
    415: "Body not JSON (`unsupported_media_type`)",
    422: "Invalid request (`invalid_request`): not the operation's schema, not UTF-8 JSON, "
    "or text with a NUL or a lone surrogate",
    503: "The service's database or Kafka is unreachable: nothing was recorded "
    "(`service_unavailable`); or, for a request with an access token, the service cannot "
    "confirm it has read every withdrawal of access from the identity topic "
    "(`revocations_unconfirmed`, docs/security.md): nothing was done",
}


# The answers that say when to try again, where an app's own refusals give them.
_RETRY_LATER = {
    429: f"Too many attempts for now (`{refusals.Throttled.code}`): nothing was tried; "
    "try again after `Retry-After` seconds",
    503: f"{_EDGE_ANSWERS[503]}; or more of this work is waiting than the service takes "
    f"(`{refusals.Overloaded.code}`): nothing was recorded, try again after `Retry-After` seconds",
}
_RETRY_AFTER = (
    "seconds to wait before trying again (429, and 503 `overloaded` or `revocations_unconfirmed`)"
)


def retry_after(details: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``Retry-After`` header of a refusal whose details name ``retry_after_seconds``."""
    seconds = details.get("retry_after_seconds")
    return None if seconds is None else {"Retry-After": str(seconds)}


def error_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an app's errors: ``statuses`` (its own refusals) and
    those any operation may answer, each with the coded body; a 429 or 503 of its own
    refusals documents ``Retry-After``."""
    own = set(statuses)
    answers: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in own}
    for status, description in _EDGE_ANSWERS.items():
        answers[status] = {"model": ErrorBody, "description": description}
    for status in own & _RETRY_LATER.keys():
        answers[status] = {
            "model": ErrorBody,
            "description": _RETRY_LATER[status],
            "headers": {
                "Retry-After": {"description": _RETRY_AFTER, "schema": {"type": "integer"}}
            },
        }
    return dict(sorted(answers.items(), key=lambda answer: int(answer[0])))


def _plain_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"location": list(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")}
        for e in error.errors()
    ]


@dataclass(frozen=True)
class Caller:
    """The authenticated user, the role they act in, and the request's correlation."""

    principal: Principal
    role: Role
    correlation_id: str
    causation_id: str | None
    client_id: str | None

    def attribution(self, now: datetime) -> Attribution:
        """Who acts in this request, and the server time ``now``: what every change records."""
        p = self.principal
        actor = Actor(p.user_id, p.printed_name, self.role.value, p.site)
        provenance = Provenance(
            actor, self.correlation_id, self.causation_id, self.client_id, self.study_id
        )
        return Attribution(provenance, now)

    @property
    def study_id(self) -> str:
        """The study this request acts in: the one its token is for."""
        return self.principal.study_id or DEFAULT_STUDY_ID


RecordDenial = Callable[[Denial], None]


class Gate(Protocol):
    """What stands between a valid token and the service: access withdrawn since it was
    issued (``shared.adapters.revocations.RevocationFeed``)."""

    async def admit(self, principal: Principal) -> None: ...


class StudyNotServed(refusals.NotFound):
    """The path names a study this deployment does not serve (``TL_STUDIES``): HTTP 404."""

    code = "study_not_served"


# a study-prefixed operation may answer this besides its own refusals (the path's study)
STUDY_ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "the study is not served here (study_not_served)",
        # JSON also where the operation answers plain text (a checkpoint)
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
}


def path_study(request: Request) -> str:
    """The study a request acts in: the one its path names (``/studies/<id>/...``), if the
    app serves it (``app.state.studies``; else ``StudyNotServed``, before anything about the
    request is recorded: a refusal never names a study that is not served, or not a study
    id at all), or the first study's (a route without the prefix)."""
    if "study_id" not in request.path_params:
        return DEFAULT_STUDY_ID
    named = str(request.path_params["study_id"])
    served: tuple[str, ...] = getattr(request.app.state, "studies", (DEFAULT_STUDY_ID,))
    if named not in served:
        raise StudyNotServed(
            f"study {named} is not served here", study_id=named, served=list(served)
        )
    return named


def study_not_granted(
    principal: Principal, request: Request | str, command: str
) -> StudyNotGranted | None:
    """The refusal of ``principal``'s token for the study ``request``'s path names (or the
    study named), when its token is for another study: a token is good for one study."""
    named = request if isinstance(request, str) else path_study(request)
    granted = principal.study_id or DEFAULT_STUDY_ID
    if named == granted:
        return None
    return StudyNotGranted(
        f"the access token of {principal.user_id} is for study {granted}, not {named}",
        command=command,
        token_study_id=granted,
        study_id=named,
    )


class Authorisation:
    """Checks a bearer token and the command's permitted roles in the service's table
    (``shared.kernel.permissions``), which also chooses the role the caller acts in; records
    every 403."""

    def __init__(
        self,
        verifier: TokenVerifier,
        table: ServiceTable,
        record_denial: RecordDenial,
        revocations: Gate | None = None,
    ) -> None:
        self.verifier = verifier
        self.table = table
        self.record_denial = record_denial
        # None in tests that build an app alone; a service's process always has one
        self.revocations = revocations

    async def admitted(self, request: Request) -> Principal:
        """The caller's principal, once its access is confirmed not withdrawn (401
        ``token_revoked``; 503 ``revocations_unconfirmed`` while that cannot be told)."""
        principal = self.verifier.principal(_bearer(request.headers.get("authorization")))
        if self.revocations is not None:
            await self.revocations.admit(principal)
        return principal

    @property
    def permissions(self) -> Mapping[str, frozenset[Role]]:
        """Command -> the roles that may run it, as the service's table gives them."""
        return self.table.permissions

    def check(self, command: str, request: Request) -> Caller:
        decided = self.decide(command, request)
        if isinstance(decided, Caller):
            return decided
        raise self.recorded(*decided)

    def decide(
        self, command: str, request: Request, principal: Principal | None = None
    ) -> Caller | tuple[Denial, Forbidden]:
        """The caller (``principal``, else the request's token's), or the denial to record
        and the refusal to answer; no I/O (an async dependency decides on the event loop
        and records a denial off it)."""
        if principal is None:
            principal = self.verifier.principal(_bearer(request.headers.get("authorization")))
        # the id the observability middleware logs and echoes, when it runs
        correlation_id = (
            current_correlation_id() or request.headers.get("x-correlation-id") or str(uuid.uuid4())
        )
        client_id = request.headers.get("x-client-id")
        permitted = self.table.roles(command)
        acting = self.table.acting_role(command, principal.roles)
        if (refused := study_not_granted(principal, request, command)) is not None:
            # recorded in the study the path names: an attempt on that study's records
            denial = Denial.of(
                principal, command, StudyNotGranted.code, correlation_id, client_id,
                request.path_params.get("subject_id"), study_id=path_study(request),
            )  # fmt: skip
            return denial, refused
        if acting is None:
            denial = Denial.of(
                principal, command, Forbidden.code, correlation_id, client_id,
                request.path_params.get("subject_id"),
            )  # fmt: skip
            return denial, Forbidden(
                f"{principal.user_id} may not {command}: it needs one of "
                f"{', '.join(sorted(permitted))}",
                command=command,
                roles=sorted(principal.roles),
                permitted_roles=sorted(permitted),
            )
        return Caller(
            principal, acting, correlation_id, request.headers.get("x-causation-id"), client_id
        )

    def recorded(self, denial: Denial, refusal: Forbidden) -> Forbidden:
        """``refusal``, once ``denial`` is recorded in the service's store (blocking)."""
        self.record_denial(denial)
        return refusal

    def signature(
        self, caller: Caller, assertion: str, meaning: Meaning, purpose: str
    ) -> SigningAssertion:
        """The caller's verified signing assertion for this step; a refusal is recorded."""
        try:
            return check_assertion(
                self.verifier.signing_assertion(assertion), caller.principal, meaning, purpose
            )
        except (SignatureRefused, Unauthenticated) as refusal:
            self.record_denial(
                Denial.of(
                    caller.principal,
                    purpose,
                    SignatureRefused.code,
                    caller.correlation_id,
                    caller.client_id,
                )
            )
            raise SignatureRefused(refusal.message, **refusal.details) from None


# The ``Authorization`` header of a command service's operations.
BearerHeader = Annotated[
    str | None, Header(description="Bearer access token from the identity service")
]


def authorised(command: str) -> Any:
    """A FastAPI dependency: the caller, if a role of theirs may run ``command``.

    The app keeps its ``Authorisation`` in ``app.state.authorisation``.
    """
    return Depends(Requires(command))


class Requires:
    """The dependency ``authorised`` gives: it names its command, so that a route's
    command (and the roles the permission table gives it) can be read off the app."""

    def __init__(self, command: str) -> None:
        self.command = command

    async def __call__(
        self,
        request: Request,
        authorization: BearerHeader = None,
    ) -> Caller:
        # async: a sync dependency would cost every request a hop to the thread pool and
        # back; the check is CPU work (the token's signature) and a look at the withdrawals
        # of access, the denial a write (off the event loop)
        checker: Authorisation = request.app.state.authorisation
        caller = checker.decide(self.command, request, await checker.admitted(request))
        if not isinstance(caller, Caller):
            raise await asyncio.to_thread(checker.recorded, *caller)
        return caller


def command_of(route: APIRoute) -> str | None:
    """The command an operation is ``authorised`` for, if any."""
    for dependency in route.dependant.dependencies:
        if isinstance(dependency.call, Requires):
            return dependency.call.command
    return None


RolesOf = Callable[[APIRoute], Collection[str] | None]


def document_roles(app: FastAPI, roles_of: RolesOf) -> None:
    """Name in each operation of the OpenAPI document the roles that may call it
    (``x-permitted-roles``), read from the role table itself, so that clients (and the
    fuzz tests) need no second copy of it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for route, operation in _operations(app, document):
                roles = roles_of(route)
                if roles is not None:
                    operation["x-permitted-roles"] = sorted(str(role) for role in roles)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every operation of ``app``, those of its included routers too (FastAPI keeps an
    included router as one entry of ``app.routes``)."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context.original_route


def _operations(
    app: FastAPI, document: dict[str, Any]
) -> Iterator[tuple[APIRoute, dict[str, Any]]]:
    """Each documented route with its operation object in ``document``."""
    for route in api_routes(app):
        if route.include_in_schema:
            for method in route.methods or ():
                yield route, document["paths"][route.path_format][method.lower()]


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header, or Unauthenticated."""
    return _bearer(header)


def _bearer(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an 'Authorization: Bearer <access token>' header is needed")
    return token.strip()


def refusals_in(package: str) -> list[type[refusals.Refusal]]:
    """The refusal classes defined in ``package`` and its modules (those imported)."""
    found, todo = [], list(refusals.Refusal.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__ == package or cls.__module__.startswith(f"{package}."):
            found.append(cls)
    return found


def command_app(
    title: str,
    description: str,
    refusals: Iterable[type[Exception]],
    authorisation: Authorisation,
) -> FastAPI:
    """A command service's app: errors mapped (``STATUSES``) and documented (every status
    its ``refusals`` can answer, a refusal of no family's 400, 401 and 403, with the
    coded body), its role table, and a liveness ``/health``."""
    statuses = (status_of(refusal) for refusal in refusals)
    answers = {400, 401, 403, *(s for s in statuses if s is not None and s >= 400)}
    app = FastAPI(
        title=f"Trial Ledger: {title}",
        version="1",
        description=description,
        responses=error_responses(answers),
    )
    install_error_mapping(app)
    app.state.authorisation = authorisation
    document_roles(app, lambda route: authorisation.permissions.get(command_of(route) or ""))

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers (``/ready`` checks its database and Kafka)."""
        return {"status": "ok"}

    return app
