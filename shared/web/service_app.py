"""Wiring a command service's HTTP app in a few lines.

Routes live on module-level ``APIRouter``s; what one process holds (its application,
local views, clock, token issuer ...) is set on ``app.state`` by ``command_service`` and
reached by ``Annotated`` dependencies (``from_state``), so a route names what it needs
in its signature, and tests build the app with their own parts as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Header, Request

from shared.adapters.outbox import Outbox
from shared.kernel.access import Denial
from shared.kernel.permissions import table
from shared.kernel.provenance import Attribution
from shared.web.auth import Meaning, SigningAssertion, TokenVerifier
from shared.web.http import Authorisation, Caller, Requires, command_app, refusals_in
from shared.web.store_api import add_store_routes

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


@dataclass(frozen=True)
class Act:
    """A caller permitted to run a command, with the app's clock and signature checks."""

    caller: Caller
    clock: Clock
    authorisation: Authorisation

    @property
    def attribution(self) -> Attribution:
        """Who acts in the caller's request, at the server time now."""
        return self.caller.attribution(self.clock())

    def signature(self, assertion: str, meaning: Meaning, purpose: str) -> SigningAssertion:
        """The caller's verified signing assertion for this step; a refusal is recorded."""
        return self.authorisation.signature(self.caller, assertion, meaning, purpose)


class Acting(Requires):
    """``authorised``, answering an ``Act``: the route's command is read off it alike."""

    def __call__(  # type: ignore[override]
        self,
        request: Request,
        authorization: Annotated[
            str | None, Header(description="Bearer access token from the identity service")
        ] = None,
    ) -> Act:
        caller = super().__call__(request, authorization)
        return Act(caller, request.app.state.clock, request.app.state.authorisation)


def acting(command: str) -> Any:
    """A FastAPI dependency: an ``Act`` of the caller, if a role of theirs may run
    ``command`` (as ``shared.web.http.authorised``)."""
    return Depends(Acting(command))


class Recording(Protocol):
    """An application that records refused commands (``ServiceApplication``)."""

    def record_denial(self, denial: Denial) -> None: ...


def command_service(
    service: str,
    description: str,
    router: APIRouter,
    application: Recording,
    verifier: TokenVerifier,
    outbox: Outbox,
    clock: Clock | None = None,
    *,
    title: str | None = None,
    **state: Any,
) -> FastAPI:
    """A command service's app (``shared.web.http.command_app``, titled ``title`` or
    ``service``, documenting the refusals of ``services.<service>``): ``service``'s row
    of the permission table, the store routes, ``router``'s routes, and on ``app.state``
    the ``application``, the ``clock`` (UTC now by default) and each of ``state``."""
    authorisation = Authorisation(verifier, table(service), application.record_denial)
    refusals = refusals_in(f"services.{service}")
    app = command_app(title or service, description, refusals, authorisation)
    add_store_routes(app, authorisation, outbox)
    app.state.application = application
    app.state.clock = clock or utc_now
    for name, value in state.items():
        setattr(app.state, name, value)
    app.include_router(router)
    return app
