"""Wiring a command service's HTTP app in a few lines.

Routes live on module-level ``APIRouter``s; what one process holds (its application,
local views, clock, token issuer ...) is set on ``app.state`` by ``command_service`` and
reached by ``Annotated`` dependencies (``from_state``), so a route names what it needs
in its signature, and tests build the app with their own parts as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request

from shared.access import Denial
from shared.auth import TokenVerifier
from shared.http import Authorisation, command_app
from shared.outbox import Outbox
from shared.permissions import table
from shared.store_api import add_store_routes

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The server's clock: UTC now."""
    return datetime.now(UTC)


class FromState:
    """A dependency: the object the app keeps in ``app.state.<name>``."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, request: Request) -> Any:
        return getattr(request.app.state, self.name)


def from_state(name: str) -> Any:
    """``Depends`` on ``app.state.<name>``, for an ``Annotated`` alias."""
    return Depends(FromState(name))


# What every command service's routes may ask for.
Now = Annotated[Clock, from_state("clock")]
Signatures = Annotated[Authorisation, from_state("authorisation")]


class Recording(Protocol):
    """An application that records refused commands (``ServiceApplication``)."""

    def record_denial(self, denial: Denial) -> None: ...


def command_service(
    service: str,
    description: str,
    statuses: Mapping[type[Exception], int],
    router: APIRouter,
    application: Recording,
    verifier: TokenVerifier,
    outbox: Outbox,
    clock: Clock | None = None,
    *,
    title: str | None = None,
    **state: Any,
) -> FastAPI:
    """A command service's app (``shared.http.command_app``, titled ``title`` or
    ``service``): ``service``'s row of the permission table, the store routes,
    ``router``'s routes, and on ``app.state`` the ``application``, the ``clock`` (UTC
    now by default) and each of ``state``."""
    authorisation = Authorisation(verifier, table(service), application.record_denial)
    app = command_app(title or service, description, statuses, authorisation)
    add_store_routes(app, authorisation, outbox)
    app.state.application = application
    app.state.clock = clock or utc_now
    for name, value in state.items():
        setattr(app.state, name, value)
    app.include_router(router)
    return app
