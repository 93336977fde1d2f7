"""End to end, on the running services with ``SYN-CART-2`` served beside the first study:
access is per study (issue #21 item 3). A study's first administrator is made on the host
(``bootstrap-study-admin``); they grant roles there; a login for the study gives a token
with the study's roles and site, which enrollment takes under ``/studies/SYN-CART-2`` alone;
a role revoked in the study withdraws that study's tokens in every service and leaves the
first study's; a deactivation withdraws the account's tokens of every study.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.study import DEFAULT_STUDY_ID
from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack, shared_stack
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
SYN = "SYN-CART-2"
PASSWORD = "study access passphrase"
WITHIN = 10.0  # seconds, as tests/e2e/test_revocation.py


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with shared_stack(
        tmp_path_factory, "study-access", TL_STUDIES=f"{DEFAULT_STUDY_ID},{SYN}"
    ) as services:
        yield services


async def bootstrap_study_admin(stack: Stack, user_id: str) -> tuple[int, str]:
    return await stack.bootstrap_study_admin(SYN, user_id, "SH-1")


async def study_login(stack: Stack, user_id: str) -> httpx.Response:
    body = {"user_id": user_id, "password": PASSWORD}
    return await stack.identity.post(f"/studies/{SYN}/login", json=body)


def bearer(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def reads(stack: Stack, token: dict[str, str], study: str | None) -> int:
    """The status enrollment answers ``token`` for a read of a subject that does not exist
    (404 ``subject_not_found``: the token was taken), on ``study``'s route."""
    prefix = "" if study is None else f"/studies/{study}"
    answer = await stack.enrollment.get(f"{prefix}/subjects/SA-404", headers=token)
    return answer.status_code


async def withdrawn(stack: Stack, token: dict[str, str], study: str) -> Any:
    """Poll until enrollment answers ``token`` 401 ``token_revoked``; its body."""
    body: dict[str, Any] = {}

    async def refused() -> bool:
        answer = await stack.enrollment.get(f"/studies/{study}/subjects/SA-404", headers=token)
        assert answer.status_code in (404, 401), answer.text
        if answer.status_code == 401:
            body.update(answer.json())
        return answer.status_code == 401

    await eventually(refused, timeout=WITHIN, what="the study's token refused")
    return body


@pytest.mark.part11("11.10(d)", "11.10(g)", "11.300(c)")
async def test_access_is_granted_used_and_withdrawn_per_study(stack: Stack) -> None:
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)
    # accounts are the first study's administrators' to create (no role there is needed)
    await stack.create_user("syn.boss", PASSWORD, admin=admin)
    await stack.create_user("syn.coord", PASSWORD, "auditor", admin=admin)

    # the second study's first administrator, made on the host, once
    assert await bootstrap_study_admin(stack, "syn.boss") == (
        0,
        "syn.boss administers SYN-CART-2\n",
    )
    again, said = await bootstrap_study_admin(stack, "syn.coord")
    assert again == 1 and "has administrators already (syn.boss)" in said, said
    boss = bearer(await study_login(stack, "syn.boss"))

    # no grant in the study yet: refused once the password was right, and recorded
    refused = await study_login(stack, "syn.coord")
    assert (refused.status_code, refused.json()["code"]) == (403, "study_not_granted")

    for role in ("study_coordinator", "auditor"):
        body = {"role": role, "site": "SH-1", "reason": "joins the second study"}
        granted = await stack.identity.post(
            f"/studies/{SYN}/users/syn.coord/roles", json=body, headers=boss
        )
        assert granted.status_code == 200, granted.text
    assert sorted(granted.json()["roles"]) == ["auditor", "study_coordinator"]
    # the first study's administrator cannot act in the second study, nor grant there
    across = await stack.identity.post(
        f"/studies/{SYN}/users/syn.coord/roles", json={"role": "monitor"}, headers=admin
    )
    assert (across.status_code, across.json()["code"]) == (403, "study_not_granted")

    answer = await study_login(stack, "syn.coord")
    assert (answer.json()["study_id"], answer.json()["roles"]) == (
        SYN,
        ["auditor", "study_coordinator"],
    )
    in_study = bearer(answer)
    in_first = await stack.log_in("syn.coord", PASSWORD)  # the first study's: auditor
    # enrollment takes each token on its own study's routes alone
    assert await reads(stack, in_study, SYN) == 404
    refusal = await stack.enrollment.get("/subjects/SA-404", headers=in_study)
    assert (refusal.status_code, refusal.json()["code"]) == (403, "study_not_granted")
    assert await reads(stack, in_first, None) == 404
    assert await reads(stack, in_first, SYN) == 403

    # a role revoked in the study withdraws the study's tokens with it, not the first's
    revoke = {"role": "auditor", "reason": "moved to coordination only"}
    revoked = await stack.identity.post(
        f"/studies/{SYN}/users/syn.coord/role-revocations", json=revoke, headers=boss
    )
    assert revoked.status_code == 200, revoked.text
    body = await withdrawn(stack, in_study, SYN)
    assert body["code"] == "token_revoked"
    assert body["details"]["withdrawn_by"] == "RoleRevoked.v2"
    assert await reads(stack, in_first, None) == 404  # the first study's auditor stands
    again_in_study = bearer(await study_login(stack, "syn.coord"))
    assert await reads(stack, again_in_study, SYN) == 404

    # a deactivation (by the first study's administrator) ends every study's tokens
    deactivated = await stack.identity.post(
        "/users/syn.coord/deactivation", json={"reason": "left both studies"}, headers=admin
    )
    assert deactivated.status_code == 200, deactivated.text
    body = await withdrawn(stack, again_in_study, SYN)
    assert body["details"]["withdrawn_by"] == "UserDeactivated.v1"
    answer = await stack.enrollment.get("/subjects/SA-404", headers=in_first)
    assert (answer.status_code, answer.json()["code"]) == (401, "token_revoked")
