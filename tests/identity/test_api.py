"""The identity authority through its HTTP API (ASGI transport, in-memory store).

Tokens are real EdDSA JWTs checked with the public key; the server clock is
controlled, so that idle timeouts and password age can be crossed without waiting.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.identity.application import IdentityApplication
from shared.kernel.provenance import Meaning, Role
from tests.identity.conftest import ADMIN_PASSWORD, Clock
from tests.support import VERIFIER, logged_in

PASSWORD = "lupus-trial-2026!"


async def log_in(client: httpx.AsyncClient, user_id: str, password: str) -> httpx.Response:
    return await client.post("/login", json={"user_id": user_id, "password": password})


async def create(
    client: httpx.AsyncClient,
    user_id: str,
    *roles: Role,
    password: str = PASSWORD,
    by: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /users for ``user_id`` with ``roles``, by ``by`` (a session; else the admin's)."""
    by = by or await logged_in(client, "admin", ADMIN_PASSWORD)
    body = {
        "user_id": user_id,
        "printed_name": user_id.title(),
        "site": "ZJU-1",
        "roles": list(roles),
        "password": password,
    }
    return await client.post("/users", json=body, headers=by)


def recorded(application: IdentityApplication) -> list[str]:
    return [
        type(application.mapper.to_domain_event(n)).__name__
        for n in application.recorder.select_notifications(start=1, limit=1000)
    ]


@pytest.fixture
async def session(client: httpx.AsyncClient) -> dict[str, str]:
    """A new session of inv.lin, an investigator: its bearer header."""
    await create(client, "inv.lin", Role.INVESTIGATOR)
    return await logged_in(client, "inv.lin", PASSWORD)


async def sign(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    body = {"meaning": "approval", "purpose": "enrollment/eligibility/S-001", **body}
    return await client.post("/signing", json=body, headers=headers)


@pytest.mark.part11("11.10(d)")
async def test_login_gives_a_token_that_services_verify(client: httpx.AsyncClient) -> None:
    response = await log_in(client, "admin", ADMIN_PASSWORD)
    principal = VERIFIER.principal(response.json()["access_token"])
    assert (principal.user_id, principal.printed_name) == ("admin", "Ada Admin")
    assert principal.roles == {Role.ADMINISTRATOR}


@pytest.mark.part11("11.300(d)")
async def test_wrong_password_is_401_and_recorded(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    response = await log_in(client, "admin", "not the password")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")
    assert recorded(application)[-1] == "LoginFailed"


@pytest.mark.part11("11.300(d)")
async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(
    client: httpx.AsyncClient,
) -> None:
    response = await log_in(client, "nobody", "whatever it is")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_credentials")


@pytest.mark.part11("11.300(d)")
async def test_lockout_after_failed_attempts_is_recorded_and_needs_an_unlock(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "inv.lin", Role.INVESTIGATOR)
    answers = [(await log_in(client, "inv.lin", "wrong password!")).status_code for _ in range(3)]
    assert answers == [401, 401, 401]  # the one that locks too: a stranger learns nothing
    assert recorded(application)[-2:] == ["LoginFailed", "AccountLocked"]
    assert (await log_in(client, "inv.lin", PASSWORD)).json()["code"] == "invalid_credentials"
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    unlocked = await client.post(
        "/users/inv.lin/unlock", json={"reason": "verified by phone"}, headers=admin
    )
    assert unlocked.status_code == 200
    assert (await log_in(client, "inv.lin", PASSWORD)).status_code == 200


@pytest.mark.part11("11.10(g)")
async def test_only_administrators_create_users_and_denials_are_recorded(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "mon.chen", Role.MONITOR)
    monitor = await logged_in(client, "mon.chen", PASSWORD)
    response = await create(client, "x.y", Role.AUDITOR, by=monitor)
    assert (response.status_code, response.json()["code"]) == (403, "role_not_permitted")
    assert recorded(application)[-1] == "AccessDenied"


@pytest.mark.part11("11.300(c)", "accounts")
async def test_role_changes_and_deactivation_are_recorded(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "sub.wu", Role.SUB_INVESTIGATOR)
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    await client.post("/users/sub.wu/roles", json={"role": "investigator"}, headers=admin)
    await client.post(
        "/users/sub.wu/role-revocations",
        json={"role": "sub_investigator", "reason": "promoted"},
        headers=admin,
    )
    user = (await client.get("/users/sub.wu", headers=admin)).json()
    assert user["roles"] == ["investigator"]
    await client.post("/users/sub.wu/deactivation", json={"reason": "left the site"}, headers=admin)
    assert (await log_in(client, "sub.wu", PASSWORD)).json()["code"] == "invalid_credentials"
    assert recorded(application)[-4:] == [
        "LoginSucceeded",
        "RoleGranted",
        "RoleRevoked",
        "UserDeactivated",
    ]


@pytest.mark.part11("11.100(a)", "11.300(a)")
async def test_user_ids_are_never_reused(client: httpx.AsyncClient) -> None:
    await create(client, "coord.li", Role.STUDY_COORDINATOR)
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    await client.post("/users/coord.li/deactivation", json={"reason": "left"}, headers=admin)
    again = await create(client, "coord.li", Role.STUDY_COORDINATOR)
    assert (again.status_code, again.json()["code"]) == (409, "user_id_taken")


@pytest.mark.part11("11.300(b)")
async def test_aged_password_must_be_changed_before_login(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await create(client, "pharm.zhao", Role.CELL_THERAPY_PHARMACIST)
    clock.advance(days=91)
    assert (await log_in(client, "pharm.zhao", PASSWORD)).json()["code"] == "password_expired"
    changed = await client.post(
        "/password",
        json={
            "user_id": "pharm.zhao",
            "current_password": PASSWORD,
            "new_password": "a fresher passphrase",
        },
    )
    assert changed.status_code == 200
    assert (await log_in(client, "pharm.zhao", "a fresher passphrase")).status_code == 200


@pytest.mark.part11("11.200(a)")
async def test_first_signing_of_a_session_needs_user_id_and_password(
    client: httpx.AsyncClient, session: dict[str, str]
) -> None:
    refused = await sign(client, session, password=PASSWORD)
    assert (refused.status_code, refused.json()["code"]) == (401, "user_id_required")
    signed = await sign(client, session, password=PASSWORD, user_id="inv.lin")
    assertion = VERIFIER.signing_assertion(signed.json()["assertion"])
    assert (assertion.user_id, assertion.meaning) == ("inv.lin", Meaning.APPROVAL)
    assert assertion.purpose == "enrollment/eligibility/S-001"


@pytest.mark.part11("11.200(a)")
async def test_later_signing_in_the_session_needs_only_the_password(
    client: httpx.AsyncClient, session: dict[str, str], clock: Clock
) -> None:
    await sign(client, session, password=PASSWORD, user_id="inv.lin")
    clock.advance(minutes=14)
    assert (await sign(client, session, password=PASSWORD)).status_code == 200


@pytest.mark.part11("11.200(a)")
async def test_after_the_idle_timeout_signing_needs_both_again(
    client: httpx.AsyncClient, session: dict[str, str], clock: Clock
) -> None:
    await sign(client, session, password=PASSWORD, user_id="inv.lin")
    clock.advance(minutes=16)
    assert (await sign(client, session, password=PASSWORD)).json()["code"] == "user_id_required"
    assert (await sign(client, session, password=PASSWORD, user_id="inv.lin")).status_code == 200


@pytest.mark.part11("11.300(d)")
async def test_failed_signing_is_recorded_and_counts_towards_lockout(
    client: httpx.AsyncClient, session: dict[str, str], application: IdentityApplication
) -> None:
    wrong = await sign(client, session, password="not my password", user_id="inv.lin")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_credentials")
    assert recorded(application)[-1] == "SigningFailed"
    await sign(client, session, password="still not it", user_id="inv.lin")
    await sign(client, session, password="third time", user_id="inv.lin")
    assert recorded(application)[-2:] == ["SigningFailed", "AccountLocked"]


@pytest.mark.part11("11.200(a)")
async def test_signing_after_logout_needs_a_new_session(
    client: httpx.AsyncClient, session: dict[str, str]
) -> None:
    assert (await client.post("/logout", headers=session)).status_code == 204
    refused = await sign(client, session, password=PASSWORD, user_id="inv.lin")
    assert refused.json()["code"] == "session_required"


@pytest.mark.part11("11.300(b)")
async def test_weak_password_is_refused(client: httpx.AsyncClient) -> None:
    response = await create(client, "a.b", Role.AUDITOR, password="short")
    assert (response.status_code, response.json()["code"]) == (422, "weak_password")


async def refusal_of(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


@pytest.mark.part11("11.300(d)")
async def test_login_refusals_are_one_answer_whether_the_account_exists_or_may_log_in(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "gone.wu", Role.SUB_INVESTIGATOR)
    await create(client, "held.li", Role.STUDY_COORDINATOR)
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    await client.post("/users/gone.wu/deactivation", json={"reason": "left"}, headers=admin)
    for _ in range(application.policy.max_failed_attempts):
        await log_in(client, "held.li", "wrong password!")

    answers = {
        "unknown id": await log_in(client, "no.such.user", PASSWORD),
        "wrong password": await log_in(client, "admin", "wrong password!"),
        "deactivated, right password": await log_in(client, "gone.wu", PASSWORD),
        "deactivated, wrong password": await log_in(client, "gone.wu", "wrong password!"),
        "locked, right password": await log_in(client, "held.li", PASSWORD),
        "locked, wrong password": await log_in(client, "held.li", "wrong password!"),
    }

    bodies = {what: await refusal_of(answer) for what, answer in answers.items()}
    assert len(set(map(str, bodies.values()))) == 1, bodies
    assert bodies["unknown id"][0] == 401
    assert bodies["unknown id"][1]["code"] == "invalid_credentials"


@pytest.mark.part11("11.300(d)")
async def test_signing_by_a_deactivated_account_gets_the_same_answer_as_a_wrong_password(
    client: httpx.AsyncClient, session: dict[str, str]
) -> None:
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    wrong = await sign(client, session, password="not my password", user_id="inv.lin")
    await client.post("/users/inv.lin/deactivation", json={"reason": "left"}, headers=admin)

    right = await sign(client, session, password=PASSWORD, user_id="inv.lin")

    assert await refusal_of(right) == await refusal_of(wrong)
    assert right.status_code == 401
