"""Wiring a command service's HTTP app in a few lines.

Routes live on a module-level ``CommandRouter`` and name the command each runs as; what
one process holds (its application, local views, clock, token issuer ...) is set on
``app.state`` by ``CommandRouter.service_app`` and reached by ``Annotated`` dependencies
(``from_state``), so a route names what it needs in its signature, and tests build the
app with their own parts as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Concatenate, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Request

from shared.adapters.outbox import Outbox
from shared.clinical import CohortOpening, first_cohort
from shared.kernel.access import Denial
from shared.kernel.permissions import table
from shared.kernel.provenance import Attribution
from shared.study import DEFAULT_STUDY_ID, record_key, served_studies, study_definition
from shared.web.auth import Meaning, SigningAssertion, TokenVerifier
from shared.web.http import (
    STUDY_ANSWERS,
    Authorisation,
    BearerHeader,
    Caller,
    Gate,
    Requires,
    command_app,
    path_study,
    refusals_in,
)
from shared.web.store_api import store_routes

Clock = Callable[[], datetime]
R = TypeVar("R")
Route = TypeVar("Route", bound=Callable[..., Any])
Out = TypeVar("Out")
App = TypeVar("App")


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


class CohortSource(Protocol):
    """Which dose level the latest safety review of a study opened
    (``shared.adapters.cohort``)."""

    async def opening(self, study_id: str = ...) -> CohortOpening: ...


async def opening_of(
    cohort: CohortSource | None, study_id: str = DEFAULT_STUDY_ID
) -> CohortOpening:
    """The level open now in ``study_id``: ``cohort``'s, or the study's first cohort where
    there is none."""
    if cohort is None:
        return first_cohort(study_definition(study_id))
    return await cohort.opening(study_id)


# What every command service's routes may ask for: its application (``Application[its
# class]``), the clock, the cohort open now.
Application = Annotated[App, from_state("application")]
Now = Annotated[Clock, from_state("clock")]
Cohort = Annotated[CohortSource | None, from_state("cohort")]


@dataclass(frozen=True)
class Act:
    """A caller permitted to run a command, with the app's clock and signature checks."""

    caller: Caller
    clock: Clock
    authorisation: Authorisation
    command: str  # the service's qualified command (``identity.grant_role``)

    @property
    def attribution(self) -> Attribution:
        """Who acts in the caller's request, at the server time now."""
        return self.caller.attribution(self.clock())

    def signature(self, assertion: str, meaning: Meaning, purpose: str) -> SigningAssertion:
        """The caller's verified signing assertion for this step; a refusal is recorded."""
        return self.authorisation.signature(self.caller, assertion, meaning, purpose)

    def record_refusal(self, reason_code: str, target_user_id: str | None = None) -> None:
        """Record that the command was refused for ``reason_code`` after the role check
        passed (an ``AccessDenied`` event, as for a refused role; blocking), naming the
        account it would have changed, ``target_user_id``, if any."""
        caller = self.caller
        self.authorisation.record_denial(
            Denial.of(caller.principal, self.command, reason_code, caller.correlation_id,
                      caller.client_id, target_user_id=target_user_id)
        )  # fmt: skip


class Acting(Requires):
    """``authorised``, keeping the caller's ``Act`` for the route (``CommandAct``); the
    route's command is read off it alike."""

    async def __call__(  # type: ignore[override]
        self,
        request: Request,
        authorization: BearerHeader = None,
    ) -> Act:
        caller = await super().__call__(request, authorization)
        checker: Authorisation = request.app.state.authorisation
        act = Act(caller, request.app.state.clock, checker, self.command)
        request.state.act = act
        return act


def acting(command: str) -> Any:
    """A FastAPI dependency: an ``Act`` of the caller, if a role of theirs may run
    ``command`` (as ``shared.web.http.authorised``)."""
    return Depends(Acting(command))


async def _current_act(request: Request) -> Act:
    act: Act | None = getattr(request.state, "act", None)
    if act is None:  # a route that takes an Act must be a CommandRouter operation
        raise RuntimeError(f"{request.url.path} names no command to authorise its Act")
    return act


CommandAct = Annotated[Act, Depends(_current_act)]
"""The ``Act`` of the caller of a ``CommandRouter`` operation, authorised for its command."""


class CommandRouter(APIRouter):
    """The routes of one service, each naming the command of the service's row in
    ``shared.kernel.permissions`` it runs as (a command with no row fails at import): the
    caller is authorised before the route runs, and the route takes their ``CommandAct``."""

    def __init__(self, service: str, **options: Any) -> None:
        super().__init__(**options)
        self.table = table(service)

    def command(self, path: str, command: str, **options: Any) -> Callable[[Route], Route]:
        """``POST path``, run as the service's ``command``."""
        return self.post(path, dependencies=[self._acting(command)], **options)

    def query(self, path: str, command: str, **options: Any) -> Callable[[Route], Route]:
        """``GET path``, read as the service's ``command``."""
        return self.get(path, dependencies=[self._acting(command)], **options)

    def service_app(
        self,
        description: str,
        application: Recording,
        serving: Serving,
        *,
        title: str | None = None,
        **state: Any,
    ) -> FastAPI:
        """The service's app (``shared.web.http.command_app``, titled ``title`` or by the
        service, documenting the refusals of ``services.<service>``): its row of the
        permission table, the store routes, these routes, and on ``app.state`` the
        ``application``, the ``serving`` clock and each of ``state``."""
        service = self.table.service
        authorisation = Authorisation(
            serving.verifier, self.table, application.record_denial, serving.revocations
        )
        refusals = refusals_in(f"services.{service}")
        app = command_app(title or service, description, refusals, authorisation)
        store = store_routes(authorisation, serving.outbox)
        app.include_router(store)  # the first study's auditors': the whole store
        app.include_router(store, prefix=STUDY_PREFIX, dependencies=[Depends(served_study)],
                           responses=STUDY_ANSWERS)  # fmt: skip
        app.state.application = application
        app.state.clock = serving.clock
        for name, value in state.items():
            setattr(app.state, name, value)
        app.state.studies = serving.studies
        app.include_router(self)
        # every route again under /studies/<id>: a route without it is the first study's
        app.include_router(self, prefix=STUDY_PREFIX, dependencies=[Depends(served_study)],
                           responses=STUDY_ANSWERS)  # fmt: skip
        return app

    def _acting(self, command: str) -> Any:
        name = f"{self.table.service}.{command}"
        self.table.roles(name)
        return acting(name)


STUDY_PREFIX = "/studies/{study_id}"
StudyId = Annotated[
    str,
    Path(
        description="the study's protocol id; the access token must be for it",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    ),
]


async def served_study(request: Request, study_id: StudyId) -> str:
    """The study the path names, if this deployment serves it (``path_study``); it also
    documents the path parameter and the 404 of every prefixed operation."""
    return path_study(request)


async def in_thread(answer: Callable[[R], Out], method: Callable[..., R], *args: Any) -> Out:
    """``answer`` of what an application's ``method`` returns for ``args``, called in a
    worker thread: it waits on the database, and the event loop keeps serving."""
    return answer(await asyncio.to_thread(method, *args))


@dataclass(frozen=True)
class Recorder(Generic[App, Out]):
    """Runs a command of ``application`` for one subject with what the service's local
    views know of the subject (``known``, in order, each asked for the subject's record
    key in ``study_id``: ``record_key``), then the command's own arguments; in a worker
    thread, answering ``answer`` of the record."""

    application: App
    known: tuple[Callable[[str], Awaitable[Any]], ...]
    answer: Callable[[Any], Out]

    async def __call__(
        self,
        command: Callable[Concatenate[App, ...], Any],
        subject_id: str,
        *args: Any,
        study_id: str = DEFAULT_STUDY_ID,
    ) -> Out:
        key = record_key(study_id, subject_id)
        facts = [await know(key) for know in self.known]
        return await self.run(command, subject_id, *facts, *args)

    async def run(self, command: Callable[Concatenate[App, ...], Any], *args: Any) -> Out:
        """``command`` of ``application`` for ``args`` alone (no view asked), answered."""
        return await in_thread(self.answer, command, self.application, *args)


Record = Annotated[Recorder[App, Out], from_state("recorder")]
"""The app's ``Recorder`` (``app.state.recorder``), for ``Record[its application, its answer]``."""


def plain(value: Any) -> Any:
    """A record's dataclasses, mappings and tuples as JSON-ready values (numbers as
    strings, dates and times in ISO 8601), for the ``dict`` fields of an answer."""
    if hasattr(value, "__dataclass_fields__"):
        return {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (Decimal, date)):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


class Recording(Protocol):
    """An application that records refused commands (``ServiceApplication``)."""

    def record_denial(self, denial: Denial) -> None: ...


@dataclass(frozen=True)
class Serving:
    """What serves every command service's app besides its application: the verifier of
    the identity service's tokens, the service's outbox (read by auditors through the store
    routes) and the server's clock."""

    verifier: TokenVerifier
    outbox: Outbox
    clock: Clock = utc_now
    # withdrawals of access learnt from the identity topic (None: an app built alone)
    revocations: Gate | None = None
    # the studies served (``TL_STUDIES``), each also under ``/studies/<id>``
    studies: tuple[str, ...] = field(default_factory=served_studies)
