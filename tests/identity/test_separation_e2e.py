"""Separation of duties and the account review on the running services (real PostgreSQL
and Kafka): every pair of the role registry at account creation, the inspector's own case
(an administrator granting themself a clinical role), and the review an auditor reads from
the ledger: who changed which account, when and why, and what was refused."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import pytest

from shared.contracts.security import AccessDeniedV2
from shared.kernel.envelope import CloudEvent
from shared.kernel.permissions import SeparationOfDuties
from shared.kernel.provenance import Role
from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack
from tests.e2e.test_audit import cli
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration
PASSWORD = "separation passphrase"
DUTIES = SeparationOfDuties.default()  # the stack runs with TL_INCOMPATIBLE_ROLES unset


async def new_user(stack: Stack, admin: dict[str, str], user_id: str, *roles: str) -> Any:
    body = {"user_id": user_id, "printed_name": user_id.title(), "site": "ZJU-1",
            "roles": list(roles), "password": PASSWORD}  # fmt: skip
    return await stack.identity.post("/users", json=body, headers=admin)


@pytest.mark.part11("11.10(g)")
async def test_every_pair_of_roles_is_created_or_refused_by_the_setting(stack: Stack) -> None:
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)
    refused = []
    for n, (a, b) in enumerate(combinations(Role, 2)):
        response = await new_user(stack, admin, f"pair.{n}", a, b)
        if DUTIES.conflicts({a, b}):
            assert (response.status_code, response.json()["code"]) == (403, "incompatible_roles")
            refused.append(n)
        else:
            assert response.status_code == 201, (a, b, response.text)

    settings = stack.identity_settings
    created = 1 + len(list(combinations(Role, 2))) - len(refused)  # the administrator too
    records = await read_topic(settings.kafka_bootstrap, settings.topic,
                               expected=created + len(refused))  # fmt: skip
    events = [CloudEvent.from_kafka_value(r.value) for r in records]
    # published as AccessDenied.v2: it names the account the refused change was for
    denied = [e.data for e in events if e.type == "AccessDenied.v2"]
    for data in denied:
        AccessDeniedV2.model_validate(data)
    assert sorted(
        (d["actor"]["user_id"], d["command"], d["reason_code"], d["target_user_id"]) for d in denied
    ) == sorted((ADMIN, "identity.create_user", "incompatible_roles", f"pair.{n}") for n in refused)
    assert not [e for e in events if e.type == "AccessDenied.v1"]
    assert len(refused) == len(DUTIES.forbidden)


@pytest.mark.part11("11.10(g)")
async def test_an_administrator_cannot_make_themself_an_investigator(stack: Stack) -> None:
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)

    grant = await stack.identity.post(
        f"/users/{ADMIN}/roles", json={"role": "investigator"}, headers=admin
    )
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)  # a new token: its roles as they are
    register = await stack.enrollment.post(
        "/subjects", json={"subject_id": "S-ADM", "site_id": "ZJU-1"}, headers=admin
    )

    assert (grant.status_code, grant.json()["code"]) == (403, "own_account")
    assert (register.status_code, register.json()["code"]) == (403, "role_not_permitted")


@pytest.mark.part11("accounts")
async def test_the_account_review_shows_who_changed_what_when_and_why(stack: Stack) -> None:
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)
    await new_user(stack, admin, "aud.kim", "auditor")
    await new_user(stack, admin, "coord.li", "study_coordinator")
    delegated = {"role": "sub_investigator", "reason": "delegation log 7"}
    await stack.identity.post("/users/coord.li/roles", json=delegated, headers=admin)
    await stack.identity.post("/users/coord.li/role-revocations",
                              json={"role": "study_coordinator", "reason": "promoted"},
                              headers=admin)  # fmt: skip
    # refused: coord.li holds a clinical role; then the administrator's own account
    await stack.identity.post(
        "/users/coord.li/roles", json={"role": "administrator"}, headers=admin
    )
    await stack.identity.post(f"/users/{ADMIN}/deactivation", json={"reason": "me"}, headers=admin)
    await stack.identity.post("/users/coord.li/deactivation", json={"reason": "left the site"},
                              headers=admin)  # fmt: skip
    auditor = await stack.log_in("aud.kim", PASSWORD)

    async def review(user_id: str) -> dict[str, Any]:
        answer = await stack.projections.get(
            "/account-review", params={"user_id": user_id}, headers=auditor
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def deactivation_reviewed() -> bool:
        changes = (await review("coord.li"))["changes"]
        return any(c["event_type"] == "UserDeactivated.v1" for c in changes)

    await eventually(deactivation_reviewed, what="coord.li's deactivation in the ledger")
    account = (await review("coord.li"))["changes"]
    assert [(c["event_type"], c["change"].get("role"), c["reason"]) for c in account] == [
        ("UserCreated.v1", None, None),
        ("RoleGranted.v1", "sub_investigator", "delegation log 7"),
        ("RoleRevoked.v1", "study_coordinator", "promoted"),
        ("AccessDenied.v2", None, None),  # the refused grant names the account it was for
        ("UserDeactivated.v1", None, "left the site"),
    ]
    assert {c["actor"]["user_id"] for c in account} == {ADMIN}
    assert {c["actor"]["role"] for c in account} == {"administrator"}
    assert [c["refused"] for c in account] == [False, False, False, True, False]
    assert all(c["recorded_at"] for c in account)
    assert account[3]["change"]["target_user_id"] == "coord.li"

    async def refusals_reviewed() -> bool:
        return len([c for c in (await review(ADMIN))["changes"] if c["refused"]]) == 2

    await eventually(refusals_reviewed, what="the refused changes in the ledger")
    refused = [c for c in (await review(ADMIN))["changes"] if c["refused"]]
    # each denial is a record of its own (a partition of its own): in ledger order, not
    # necessarily in the order they were made
    assert {
        (c["change"]["command"], c["change"]["reason_code"], c["user_id"]) for c in refused
    } == {
        ("identity.grant_role", "incompatible_roles", "coord.li"),
        ("identity.deactivate_user", "own_account", ADMIN),
    }
    token = auditor["Authorization"].split()[1]
    by_cli = await cli(stack, token, "accounts", "--user", "coord.li")
    assert by_cli.returncode == 0, by_cli.stderr
    assert json.loads(by_cli.stdout) == await review("coord.li")
    everyone = await stack.projections.get("/account-review", headers=auditor)
    assert everyone.json()["incompatible_roles"] == []
    investigator = await stack.member("inv.lin", PASSWORD, "investigator")
    assert (await stack.projections.get("/account-review", headers=investigator)).status_code == 403


async def test_projections_is_ready_with_the_same_pairs_as_identity(stack: Stack) -> None:
    """Both run with ``TL_INCOMPATIBLE_ROLES`` unset: projections asks identity for its pairs
    (``GET /separation-of-duties``) and finds its own."""
    published = await stack.identity.get("/separation-of-duties")
    assert published.status_code == 200, published.text
    assert published.json()["incompatible_roles"] == DUTIES.pairs()

    ready = await stack.projections.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["separation_of_duties"] == "ok", ready.text
