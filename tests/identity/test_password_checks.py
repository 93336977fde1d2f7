"""Where and how the identity service checks passwords: OWASP's argon2id parameters, the
same refusal for an unknown account as for a wrong password (after as long a check), the
attempt budgets per account and client address (429, recorded), the bounded pool (503),
and the event loop that keeps serving while a hash is computed. No test times anything.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import argon2
import httpx
import pytest

from services.identity.api import PasswordChecks
from services.identity.application import REFUSED, IdentityApplication
from services.identity.domain import User
from services.identity.passwords import Passwords, _dummy_hash
from shared.kernel.provenance import Actor, Attribution, Provenance, Role
from shared.kernel.settings import PasswordCheckSettings
from tests.identity.conftest import ADMIN_PASSWORD, Clock, serving
from tests.identity.test_api import PASSWORD, create, log_in, recorded, sign
from tests.support import logged_in

OWASP = {"type": argon2.Type.ID, "memory_cost": 19_456, "time_cost": 2, "parallelism": 1}


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountedPasswords(Passwords):
    """Passwords that note each check: the hash it was checked against, in which thread."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[tuple[str | None, str]] = []

    def matches(self, password_hash: str | None, password: str) -> bool:
        self.checked.append((password_hash, threading.current_thread().name))
        return super().matches(password_hash, password)


class HeldPasswords(CountedPasswords):
    """Passwords whose checks wait, once started, until the test lets them go on."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.go_on = threading.Event(), threading.Event()

    def matches(self, password_hash: str | None, password: str) -> bool:
        self.started.set()
        self.go_on.wait(timeout=30)
        return super().matches(password_hash, password)


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


def checks(ticks: Ticks, **settings: int) -> PasswordChecks:
    """Password checks with these settings (else generous ones), on ``ticks``."""
    chosen = {"workers": 2, "queue": 8, "attempts_per_account": 50, "attempts_per_address": 50}
    return PasswordChecks(PasswordCheckSettings(**{**chosen, **settings}), ticks)


@pytest.fixture
async def client(
    application: IdentityApplication, clock: Clock, ticks: Ticks
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose account budget is 4 attempts a minute (the account policy locks at 3)."""
    async with serving(application, clock, checks(ticks, attempts_per_account=4)) as c:
        yield c


def denials(application: IdentityApplication) -> list[tuple[str, str, str]]:
    """The recorded refusals: whose, which command, why."""
    events: list[Any] = [event for _, event in application.stored_events()]
    refused = [e.denial for e in events if type(e).__name__ == "AccessDenied"]
    return [(denial.user_id, denial.command, denial.reason_code) for denial in refused]


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    return response.status_code, response.json()["code"], response.json()["message"]


@pytest.mark.part11("11.300(b)")
def test_new_hashes_have_owasp_argon2id_parameters(application: IdentityApplication) -> None:
    stored = application.get_user("admin").password_hash
    for password_hash in (stored, _dummy_hash()):
        parameters = argon2.extract_parameters(password_hash)
        assert {name: getattr(parameters, name) for name in OWASP} == OWASP


async def test_an_unknown_account_is_refused_as_a_wrong_password_after_a_check_alike(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    application.passwords = CountedPasswords()
    await create(client, "inv.lin", Role.INVESTIGATOR)

    wrong = await log_in(client, "inv.lin", "not the password")
    unknown = await log_in(client, "nobody.here", "not the password")

    same = (401, "invalid_credentials", REFUSED)
    assert refusal(wrong) == refusal(unknown) == same
    known_hash = application.get_user("inv.lin").password_hash
    # one argon2 check each: against the account's hash, and against the dummy one
    assert [checked for checked, _ in application.passwords.checked[-2:]] == [known_hash, None]


async def test_a_hash_made_with_older_parameters_still_verifies(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    made = Attribution(Provenance(Actor("bootstrap", "b", "system", "ZJU"), "t"), datetime.now(UTC))
    older = argon2.PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4)  # the old default
    roles = frozenset({Role.MONITOR})
    account = User.create(
        "old.hand", "Old Hand", "ZJU-1", roles, older.hash(PASSWORD), made, application.policy
    )
    application.save(account)

    assert (await log_in(client, "old.hand", PASSWORD)).status_code == 200


@pytest.mark.part11("11.300(d)")
async def test_the_attempt_over_the_account_budget_is_refused_429_and_recorded_once(
    client: httpx.AsyncClient, application: IdentityApplication, ticks: Ticks
) -> None:
    await create(client, "inv.lin", Role.INVESTIGATOR)
    answers = [await log_in(client, "inv.lin", "wrong password!") for _ in range(6)]

    # the lockout as before (3 failures lock, answered as wrong passwords), then the
    # budget of 4 attempts refuses
    codes = [answer.json()["code"] for answer in answers]
    assert codes == ["invalid_credentials"] * 4 + ["too_many_attempts"] * 2
    over = answers[4]
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "15"  # one attempt back every 60 s / 4
    assert over.json()["details"] == {"retry_after_seconds": 15, "limited": "account"}
    assert denials(application)[-1:] == [("inv.lin", "identity.log_in", "too_many_attempts")]
    assert len(denials(application)) == 1  # a flood is recorded once a window, not per attempt

    ticks.now += 15
    assert (await log_in(client, "inv.lin", PASSWORD)).json()["code"] == "invalid_credentials"
    assert application.get_user("inv.lin").locked


@pytest.mark.part11("11.300(d)")
async def test_the_address_budget_refuses_any_account_from_the_flooding_address(
    application: IdentityApplication, clock: Clock, ticks: Ticks
) -> None:
    async with serving(application, clock, checks(ticks, attempts_per_address=2)) as client:
        tried = [await log_in(client, f"guess.{n}", "not the password") for n in range(3)]

    assert [answer.status_code for answer in tried] == [401, 401, 429]
    assert tried[2].json()["details"]["limited"] == "address"
    assert recorded(application)[-1] == "AccessDenied"


async def test_right_passwords_and_other_refusals_give_their_attempt_back(
    application: IdentityApplication, clock: Clock, ticks: Ticks
) -> None:
    weak = {"user_id": "admin", "current_password": ADMIN_PASSWORD, "new_password": "short"}
    async with serving(application, clock, checks(ticks, attempts_per_account=1)) as client:
        logins = [(await log_in(client, "admin", ADMIN_PASSWORD)).status_code for _ in range(3)]
        changes = [(await client.post("/password", json=weak)).json()["code"] for _ in range(3)]

    assert logins == [200] * 3
    assert changes == ["weak_password"] * 3


async def test_the_event_loop_answers_while_a_password_is_hashed(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    held = application.passwords = HeldPasswords()
    login = asyncio.create_task(log_in(client, "admin", "not the password"))
    await asyncio.to_thread(held.started.wait, 30)

    health = await client.get("/health")

    assert health.status_code == 200
    assert not login.done()  # the hash is still held, and the loop answered meanwhile
    held.go_on.set()
    assert (await login).status_code == 401
    assert all(thread.startswith("password") for _, thread in held.checked)


async def test_a_full_pool_refuses_503_with_retry_after(
    application: IdentityApplication, clock: Clock, ticks: Ticks
) -> None:
    held = application.passwords = HeldPasswords()
    async with serving(application, clock, checks(ticks, workers=1, queue=0)) as client:
        first = asyncio.create_task(log_in(client, "admin", "not the password"))
        await asyncio.to_thread(held.started.wait, 30)

        busy = await log_in(client, "admin", "not the password")

        held.go_on.set()
        assert (await first).status_code == 401
    assert (busy.status_code, busy.json()["code"]) == (503, "overloaded")
    assert busy.headers["Retry-After"] == "1"


async def test_signings_spend_the_same_account_budget_and_are_refused_429(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "inv.lin", Role.INVESTIGATOR)
    session = await logged_in(client, "inv.lin", PASSWORD)  # right: gives its attempt back
    wrong = [await sign(client, session, password="not mine", user_id="inv.lin") for _ in range(5)]

    assert [answer.status_code for answer in wrong] == [401] * 4 + [429]  # locked at the 3rd
    assert denials(application)[-1] == ("inv.lin", "identity.sign", "too_many_attempts")
