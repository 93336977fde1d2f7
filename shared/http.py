"""HTTP plumbing shared by the services: error mapping, the acting user, correlation.

Errors become responses in one registry keyed by exception class (the most specific
registered base wins); endpoints raise, they never build error responses by hand.
Every 4xx body is ``{"code", "message", "details"}`` with a stable ``code``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

log = logging.getLogger(__name__)

ROLES = frozenset(
    {
        "investigator",
        "sub_investigator",
        "study_coordinator",
        "cell_therapy_pharmacist",
        "monitor",
        "auditor",
        "administrator",
    }
)


class ErrorBody(BaseModel):
    """The body of every 4xx answer."""

    code: str
    message: str
    details: dict[str, Any] = {}


class Unauthenticated(Exception):
    """The request does not say who is acting."""

    code = "unauthenticated"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = {}


def install_error_mapping(app: FastAPI, statuses: Mapping[type[Exception], int]) -> None:
    """Answer every exception of a registered class with its status and a coded body.

    Exceptions need ``code``, ``message`` and ``details`` attributes.
    """
    registry: dict[type[Exception], int] = {
        Unauthenticated: 401,
        # the event store is down or unreachable: retry later, nothing was recorded
        OperationalError: 503,
        InterfaceError: 503,
        **statuses,
    }

    async def handle(request: Request, error: Exception) -> JSONResponse:
        status = next(registry[cls] for cls in type(error).__mro__ if cls in registry)
        body = ErrorBody(
            code=getattr(error, "code", None) or _CODES_BY_STATUS.get(status, "error"),
            message=getattr(error, "message", str(error)),
            details=getattr(error, "details", {}),
        )
        log.info(
            "command refused path=%s status=%d code=%s correlation_id=%s",
            request.url.path,
            status,
            body.code,
            request.headers.get("x-correlation-id"),
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=status)

    async def invalid_request(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)  # noqa: S101
        body = ErrorBody(
            code="invalid_request",
            message="the request does not match the command's schema",
            details={"errors": _plain_errors(error)},
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=422)

    for cls in registry:
        app.add_exception_handler(cls, handle)
    app.add_exception_handler(RequestValidationError, invalid_request)


_CODES_BY_STATUS = {503: "service_unavailable"}


def _plain_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"location": list(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")}
        for e in error.errors()
    ]


@dataclass(frozen=True)
class RequestIdentity:
    """Who is acting, and the request's correlation (until tokens exist, from headers)."""

    user_id: str
    printed_name: str
    role: str
    site: str
    correlation_id: str
    causation_id: str | None
    client_id: str | None


def acting_user(
    x_actor_id: Annotated[str | None, Header(description="acting user's unique id")] = None,
    x_actor_name: Annotated[str | None, Header(description="printed name")] = None,
    x_actor_role: Annotated[str | None, Header(description="study role")] = None,
    x_actor_site: Annotated[str | None, Header(description="site id")] = None,
    x_correlation_id: Annotated[str | None, Header()] = None,
    x_causation_id: Annotated[str | None, Header()] = None,
    x_client_id: Annotated[str | None, Header(description="client or device id")] = None,
) -> RequestIdentity:
    """The acting user from the ``X-Actor-*`` headers; 401 when any is missing.

    A stand-in until identity exists (issue #3): it identifies, it does not authenticate.
    """
    missing = [
        name
        for name, value in (
            ("X-Actor-Id", x_actor_id),
            ("X-Actor-Name", x_actor_name),
            ("X-Actor-Role", x_actor_role),
            ("X-Actor-Site", x_actor_site),
        )
        if not (value and value.strip())
    ]
    if missing:
        raise Unauthenticated(f"missing header(s): {', '.join(missing)}")
    assert x_actor_id and x_actor_name and x_actor_role and x_actor_site  # noqa: S101
    if x_actor_role not in ROLES:
        raise Unauthenticated(f"X-Actor-Role {x_actor_role!r} is not one of {sorted(ROLES)}")
    return RequestIdentity(
        user_id=x_actor_id.strip(),
        printed_name=x_actor_name.strip(),
        role=x_actor_role,
        site=x_actor_site.strip(),
        correlation_id=x_correlation_id or str(uuid.uuid4()),
        causation_id=x_causation_id,
        client_id=x_client_id,
    )
