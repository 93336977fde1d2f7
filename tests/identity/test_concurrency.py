"""Parallel commands on one account, on the real PostgreSQL: through the HTTP API, and
through two applications on one store (two identity processes).

Lockout must hold when an attacker goes parallel: every wrong password is recorded,
as a sequential run would record it, and none is lost to a conflicting save.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from services.identity import errors
from services.identity.api import create_app
from services.identity.application import IdentityApplication
from services.identity.publication import PUBLICATION
from shared.kernel.provenance import Actor, Attribution, Meaning, Provenance, Role
from shared.kernel.settings import PasswordCheckSettings, ServiceSettings
from shared.web.service_app import Serving
from tests.support import (
    ISSUER,
    VERIFIER,
    asgi_client,
    at_once,
    logged_in,
    memory_outbox,
    on_postgres,
    parallel_conflicts,
)

pytestmark = pytest.mark.integration
PASSWORD = "lupus-trial-2026!"
ADMIN_PASSWORD = "correct horse battery"
PARALLEL = 16


def bootstrap() -> Attribution:
    actor = Actor("bootstrap", "bootstrap", "system", "ZJU-1")
    return Attribution(Provenance(actor, "tests"), datetime.now(UTC))


@pytest.fixture
def application(settings: ServiceSettings) -> Iterator[IdentityApplication]:
    """The identity application on a schema of its own, with the default account policy
    (TL_MAX_FAILED_ATTEMPTS' default), an administrator and an investigator."""
    with on_postgres(IdentityApplication, settings) as app:
        for user_id, role, password in (
            ("admin", Role.ADMINISTRATOR, ADMIN_PASSWORD),
            ("inv.lin", Role.INVESTIGATOR, PASSWORD),
        ):
            app.create_user(user_id, user_id.title(), "ZJU-1", frozenset({role}), password,
                            bootstrap())  # fmt: skip
        yield app


@pytest.fixture
def second_process(
    settings: ServiceSettings, application: IdentityApplication
) -> Iterator[IdentityApplication]:
    """Another identity application on the same store, as a second process would be:
    the first one's per-account locks do not hold it back, only optimistic saves do."""
    with on_postgres(IdentityApplication, settings) as app:
        yield app


@pytest.fixture
async def client(application: IdentityApplication) -> AsyncIterator[httpx.AsyncClient]:
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, ISSUER, Serving(VERIFIER, outbox))
    async with asgi_client(app, "id") as client:
        yield client


def events_of(application: IdentityApplication, user_id: str) -> list[tuple[str, int | None]]:
    """The account's events: name, and the attempt count where it has one."""
    return [
        (type(event).__name__, getattr(event, "attempt", getattr(event, "failed_attempts", None)))
        for _, event in application.stored_events()
        if getattr(event, "user_id", None) == user_id
    ]


def answered(responses: list[httpx.Response]) -> list[tuple[int, str]]:
    return sorted((r.status_code, r.json()["code"]) for r in responses)


async def log_in(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post("/login", json={"user_id": "inv.lin", "password": password})


def locked_as_in_sequence(
    application: IdentityApplication,
    answers: list[httpx.Response],
    failure: str,
    earlier_events: int,
) -> None:
    """``answers`` to parallel wrong attempts, and inv.lin's events after its first
    ``earlier_events``, are what a sequential run gives: a 401 per wrong attempt, the one
    that locks and those after it too (a locked account is answered as a wrong password: no
    5xx, no 409: no attempt lost to a conflict); each ``failure`` counted, one lock. Attempts
    beyond the account's budget (the default ``TL_ATTEMPTS_PER_ACCOUNT``) are refused before
    their password is checked: 429. Then even the right password is refused, and the
    account is locked (asked of the application: through HTTP the account's budget, spent,
    answers first)."""
    maximum = application.policy.max_failed_attempts
    admitted = min(PARALLEL, PasswordCheckSettings().attempts_per_account)
    assert answered(answers) == (
        [(401, "invalid_credentials")] * admitted
        + [(429, "too_many_attempts")] * (PARALLEL - admitted)
    )
    failures: list[tuple[str, int | None]] = [(failure, n) for n in range(1, maximum + 1)]
    recorded = events_of(application, "inv.lin")[earlier_events:]
    assert recorded == [*failures, ("AccountLocked", maximum)]
    with pytest.raises(errors.InvalidCredentials):
        application.log_in("inv.lin", PASSWORD, bootstrap())
    assert application.get_user("inv.lin").locked


async def test_parallel_wrong_passwords_lock_the_account_as_a_sequential_run_would(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    answers = await at_once(PARALLEL, lambda: log_in(client, "not the password"))

    locked_as_in_sequence(application, answers, "LoginFailed", earlier_events=1)


async def test_parallel_failed_signings_count_towards_the_same_lockout(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    investigator = await logged_in(client, "inv.lin", PASSWORD)
    body = {"meaning": "approval", "purpose": "enrollment/eligibility/S-001",
            "user_id": "inv.lin", "password": "not the password"}  # fmt: skip

    answers = await at_once(
        PARALLEL, lambda: client.post("/signing", json=body, headers=investigator)
    )

    locked_as_in_sequence(application, answers, "SigningFailed", earlier_events=2)


async def test_parallel_creations_of_one_user_id_give_one_account(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    body = {"user_id": "mon.chen", "printed_name": "Mon Chen", "site": "ZJU-1",
            "roles": ["monitor"], "password": PASSWORD}  # fmt: skip

    conflicts = await parallel_conflicts(
        lambda: client.post("/users", json=body, headers=admin), 201
    )

    assert conflicts == {"user_id_taken"}
    assert [name for name, _ in events_of(application, "mon.chen")] == ["UserCreated"]


async def test_parallel_unlocks_of_one_account_give_one_unlock(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    for _ in range(application.policy.max_failed_attempts):
        await log_in(client, "not the password")
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)

    conflicts = await parallel_conflicts(
        lambda: client.post("/users/inv.lin/unlock", json={"reason": "phoned"}, headers=admin), 200
    )

    assert conflicts == {"not_locked"}
    unlocks = [name for name, _ in events_of(application, "inv.lin") if name == "AccountUnlocked"]
    assert unlocks == ["AccountUnlocked"]


async def test_two_processes_count_every_failed_login_and_signing_on_one_account(
    application: IdentityApplication, second_process: IdentityApplication
) -> None:
    maximum = application.policy.max_failed_attempts
    session = application.log_in("inv.lin", PASSWORD, bootstrap())

    def wrong_login() -> None:
        application.log_in("inv.lin", "not the password", bootstrap())

    def wrong_signing() -> None:
        second_process.authenticate_signing(
            session, "inv.lin", "not the password", Meaning.APPROVAL, "tests", bootstrap()
        )

    attempts: list[Callable[[], None]] = [wrong_login, wrong_signing] * (PARALLEL // 2)
    outcomes = await asyncio.gather(
        *(asyncio.to_thread(attempt) for attempt in attempts), return_exceptions=True
    )

    refusals = Counter(type(outcome).__name__ for outcome in outcomes)
    assert refusals == {"InvalidCredentials": PARALLEL}  # locked: answered as a wrong password
    recorded = events_of(application, "inv.lin")[2:]
    assert [attempt for _, attempt in recorded] == [*range(1, maximum + 1), maximum]
    assert {name for name, _ in recorded[:-1]} <= {"LoginFailed", "SigningFailed"}
    assert recorded[-1][0] == "AccountLocked"
    with pytest.raises(errors.InvalidCredentials):
        second_process.log_in("inv.lin", PASSWORD, bootstrap())
    assert second_process.get_user("inv.lin").locked
