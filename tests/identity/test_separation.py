"""Separation of duties at the identity service (docs/security.md, "Separation of duties"):
no one holds two roles ``TL_INCOMPATIBLE_ROLES`` pairs (every pair of the role registry is
tried), no one changes their own roles or status, and every such refusal is recorded as an
``AccessDenied`` event. Through the HTTP API, on the in-memory store;
``test_separation_e2e`` runs the pairs against the running services."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations

import httpx
import pytest

from services.identity.application import IdentityApplication
from services.identity.domain import AccountPolicy, User
from shared.kernel.access import AccessDenial, Denial
from shared.kernel.permissions import SeparationOfDuties
from shared.kernel.provenance import Actor, Attribution, Provenance, Role
from tests.identity.conftest import ADMIN_PASSWORD
from tests.identity.test_api import PASSWORD, create, log_in
from tests.support import logged_in

PAIRS = list(combinations(Role, 2))
IDS = [f"{a}+{b}" for a, b in PAIRS]
DUTIES = SeparationOfDuties.default()


def denials(application: IdentityApplication) -> list[tuple[str, str, str, str | None]]:
    """Each recorded denial: who, the command, why, and the account it was for."""
    found = []
    for notification in application.recorder.select_notifications(start=1, limit=1000):
        event = application.mapper.to_domain_event(notification)
        denial: Denial | None = getattr(event, "denial", None)
        if isinstance(event, AccessDenial.AccessDenied) and denial is not None:
            found.append(
                (denial.user_id, denial.command, denial.reason_code, denial.target_user_id)
            )
    return found


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=IDS)
async def test_creating_a_user_with_two_roles_follows_the_setting(
    client: httpx.AsyncClient, application: IdentityApplication, a: Role, b: Role
) -> None:
    response = await create(client, "two.hats", a, b)

    if DUTIES.conflicts({a, b}):
        assert (response.status_code, response.json()["code"]) == (403, "incompatible_roles")
        assert denials(application) == [
            ("admin", "identity.create_user", "incompatible_roles", "two.hats")
        ]
        assert (await log_in(client, "two.hats", PASSWORD)).status_code == 401  # not made
    else:
        assert response.status_code == 201, response.text
        assert denials(application) == []


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=IDS)
async def test_granting_a_second_role_follows_the_setting(
    client: httpx.AsyncClient, application: IdentityApplication, a: Role, b: Role
) -> None:
    await create(client, "one.hat", a)
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)

    response = await client.post("/users/one.hat/roles", json={"role": b}, headers=admin)

    if DUTIES.conflicts({a, b}):
        assert (response.status_code, response.json()["code"]) == (403, "incompatible_roles")
        assert response.json()["details"]["conflicts"] == [list(DUTIES.conflicts({a, b})[0])]
        assert denials(application) == [
            ("admin", "identity.grant_role", "incompatible_roles", "one.hat")
        ]
        assert application.get_user("one.hat").roles == {a}
    else:
        assert response.status_code == 200, response.text
        assert application.get_user("one.hat").roles == {a, b}


@pytest.mark.parametrize(
    ("command", "path", "body"),
    [
        ("grant_role", "roles", {"role": "investigator"}),
        ("grant_role", "roles", {"role": "auditor"}),
        ("revoke_role", "role-revocations", {"role": "administrator", "reason": "r"}),
        ("deactivate_user", "deactivation", {"reason": "leaving"}),
        ("unlock_user", "unlock", {"reason": "it was me"}),
    ],
)
@pytest.mark.part11("11.10(g)")
async def test_no_one_changes_their_own_roles_or_status(
    client: httpx.AsyncClient,
    application: IdentityApplication,
    command: str,
    path: str,
    body: dict[str, str],
) -> None:
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)

    response = await client.post(f"/users/admin/{path}", json=body, headers=admin)

    assert (response.status_code, response.json()["code"]) == (403, "own_account")
    assert denials(application) == [("admin", f"identity.{command}", "own_account", "admin")]
    assert application.get_user("admin").roles == {Role.ADMINISTRATOR}
    assert application.get_user("admin").active


async def test_another_administrator_may_change_the_account(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "ada.two", Role.ADMINISTRATOR)
    second = await logged_in(client, "ada.two", PASSWORD)

    response = await client.post(
        "/users/admin/deactivation", json={"reason": "left the site"}, headers=second
    )

    assert response.status_code == 200
    assert denials(application) == []


async def test_an_account_that_held_a_forbidden_pair_before_the_rule_works_and_is_shown(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    # made as the rule did not stop it (before it, or under another TL_INCOMPATIBLE_ROLES)
    made = Attribution(Provenance(Actor("bootstrap", "b", "system", "ZJU"), "t"), datetime.now(UTC))
    before = AccountPolicy(duties=SeparationOfDuties.parse("none"))
    roles = frozenset({Role.ADMINISTRATOR, Role.INVESTIGATOR})
    password_hash = application.passwords.hash(PASSWORD)
    application.save(User.create("old.admin", "Old", "ZJU-1", roles, password_hash, made, before))
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)

    shown = (await client.get("/users/old.admin", headers=admin)).json()
    unrelated = await client.post("/users/old.admin/roles", json={"role": "auditor"}, headers=admin)
    revoked = await client.post(
        "/users/old.admin/role-revocations",
        json={"role": "investigator", "reason": "separation of duties"},
        headers=admin,
    )

    assert shown["conflicting_roles"] == [["investigator", "administrator"]]
    assert unrelated.status_code == 200  # a pair held from before stops no unrelated grant
    assert revoked.json()["conflicting_roles"] == []
