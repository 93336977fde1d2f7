"""Access per study (issue #21 item 3): an account's roles and site are granted per study,
a login names its study, and a token (and a signing assertion) is good for that study alone.

Through the identity HTTP API (ASGI transport, in-memory store, real EdDSA tokens), with
``SYN-CART-2`` served beside the first study; an enrollment app built here judges the
tokens identity issues. The revocation feed of a study's role is in
tests/e2e/test_study_access.py, against the running services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from services.enrollment.api import create_app as enrollment_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION as ENROLLMENT
from services.identity.api import create_app
from services.identity.application import IdentityApplication
from services.identity.publication import PUBLICATION
from shared.adapters.revocations import keys_of, role_key, withdrawal
from shared.kernel.principals import Principal, SignatureRefused, check_assertion
from shared.kernel.provenance import Meaning, Role
from shared.study import DEFAULT_STUDY_ID
from shared.web.service_app import Serving
from tests.identity.conftest import ADMIN_PASSWORD, Clock
from tests.support import (
    ISSUER,
    MEMORY,
    VERIFIER,
    as_published,
    asgi_client,
    bearer,
    logged_in,
    memory_outbox,
)

SYN = "SYN-CART-2"
STUDIES = (DEFAULT_STUDY_ID, SYN)
PASSWORD = "per-study passphrase 1"
# an administrator of the second study (a token of the tests' issuer: no one can grant
# the first role there through the API; bootstrap-study-admin does, tests/e2e)
SYN_ADMIN = Principal(
    "syn.admin", "Syn Admin", "SH-1", frozenset({Role.ADMINISTRATOR}), "s-syn", study_id=SYN
)


@pytest.fixture
async def client(
    application: IdentityApplication, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    outbox = memory_outbox(application, PUBLICATION)
    serving = Serving(VERIFIER, outbox, clock, studies=STUDIES)
    async with asgi_client(create_app(application, ISSUER, serving), "id") as c:
        yield c


async def create(client: httpx.AsyncClient, user_id: str, *roles: Role) -> None:
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    body = {
        "user_id": user_id,
        "printed_name": user_id.title(),
        "site": "ZJU-1",
        "roles": list(roles),
        "password": PASSWORD,
    }
    response = await client.post("/users", json=body, headers=admin)
    assert response.status_code == 201, response.text


async def grant(
    client: httpx.AsyncClient, user_id: str, role: Role, site: str | None = "SH-1"
) -> httpx.Response:
    body: dict[str, Any] = {"role": role, "reason": "joins the study"}
    if site is not None:
        body["site"] = site
    return await client.post(
        f"/studies/{SYN}/users/{user_id}/roles", json=body, headers=bearer(SYN_ADMIN)
    )


async def log_in(client: httpx.AsyncClient, user_id: str, password: str = PASSWORD) -> Any:
    body = {"user_id": user_id, "password": password}
    return await client.post(f"/studies/{SYN}/login", json=body)


def stored(application: IdentityApplication) -> list[Any]:
    return [
        application.mapper.to_domain_event(n)
        for n in application.recorder.select_notifications(start=1, limit=1000)
    ]


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("code")


@pytest.mark.part11("11.10(d)", "11.10(g)")
async def test_a_grant_in_a_study_gives_a_token_for_it_with_its_roles_and_site(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "inv.zhao", Role.INVESTIGATOR)
    assert code(await grant(client, "inv.zhao", Role.MONITOR, site=None)) == (
        422,
        "site_required",
    )
    granted = await grant(client, "inv.zhao", Role.MONITOR)
    assert granted.status_code == 200, granted.text
    assert {k: granted.json()[k] for k in ("study_id", "site", "roles")} == {
        "study_id": SYN,
        "site": "SH-1",
        "roles": ["monitor"],
    }
    # another site in the same study is refused while the account has roles there
    assert code(await grant(client, "inv.zhao", Role.AUDITOR, site="SH-2")) == (
        409,
        "site_differs",
    )

    answer = await log_in(client, "inv.zhao")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["study_id"], answer.json()["roles"]) == (SYN, ["monitor"])
    token = VERIFIER.principal(answer.json()["access_token"])
    assert (token.study_id, token.site, token.roles) == (SYN, "SH-1", frozenset({Role.MONITOR}))

    # the first study's login is as before: its roles and site, no study claim
    first = await client.post("/login", json={"user_id": "inv.zhao", "password": PASSWORD})
    assert (first.json()["study_id"], first.json()["roles"]) == (DEFAULT_STUDY_ID, ["investigator"])
    claims = VERIFIER._decode(first.json()["access_token"], "access")
    assert "study" not in claims
    assert VERIFIER.principal(first.json()["access_token"]).site == "ZJU-1"

    # the grant is a new event of its own, published as RoleGranted.v2 in the study's key
    grants = [e for e in stored(application) if type(e).__name__ == "StudyRoleGranted"]
    assert [(g.study_id, g.site, g.role) for g in grants] == [(SYN, "SH-1", "monitor")]
    published = [e for e in as_published(application, PUBLICATION) if e.type.startswith("Role")]
    assert [(e.type, e.data["study_id"], e.data["site"]) for e in published] == [
        ("RoleGranted.v2", SYN, "SH-1")
    ]
    # the relay's envelope names the study (studyid) and keys the event in it
    assert PUBLICATION.study(grants[0]) == SYN
    assert PUBLICATION.key(grants[0], DEFAULT_STUDY_ID).startswith(f"{SYN}/")
    # the account read in each study: that study's grant
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    here = (await client.get("/users/inv.zhao", headers=admin)).json()
    assert (here["study_id"], here["site"], here["roles"]) == (
        DEFAULT_STUDY_ID,
        "ZJU-1",
        ["investigator"],
    )


@pytest.mark.part11("11.10(d)", "11.300(d)")
async def test_login_for_a_study_without_a_grant_is_refused_and_recorded_after_the_password(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "coord.ma", Role.STUDY_COORDINATOR)
    refused = await log_in(client, "coord.ma")
    assert code(refused) == (403, "study_not_granted")
    denial = stored(application)[-1]
    assert type(denial).__name__ == "AccessDenied"
    assert (denial.denial.user_id, denial.denial.command, denial.denial.reason_code) == (
        "coord.ma",
        "identity.log_in",
        "study_not_granted",
    )
    assert denial.denial.study_id == SYN
    assert [type(e).__name__ for e in stored(application)[-2:]] == ["UserCreated", "AccessDenied"]
    # no more said than today: a wrong password, and an unknown account, get the one answer
    wrong = await log_in(client, "coord.ma", "not the password at all")
    unknown = await log_in(client, "no.such.user")
    assert code(wrong) == code(unknown) == (401, "invalid_credentials")
    assert wrong.json()["message"] == unknown.json()["message"]
    assert type(stored(application)[-1]).__name__ == "LoginFailed"
    # a study not served is not one to log in for
    other = await client.post("/studies/NOT-SERVED/login", json={"user_id": "x", "password": "y"})
    assert code(other) == (404, "study_not_served")


async def test_revoking_the_last_role_in_a_study_ends_the_grant_there_alone(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "aud.sun", Role.AUDITOR)
    assert (await grant(client, "aud.sun", Role.AUDITOR)).status_code == 200
    revoked = await client.post(
        f"/studies/{SYN}/users/aud.sun/role-revocations",
        json={"role": "auditor", "reason": "left the study"},
        headers=bearer(SYN_ADMIN),
    )
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["roles"], revoked.json()["site"]) == ([], "")
    assert code(await log_in(client, "aud.sun")) == (403, "study_not_granted")
    first = await client.post("/login", json={"user_id": "aud.sun", "password": PASSWORD})
    assert first.json()["roles"] == ["auditor"]  # the first study's grant stands
    published = [e for e in as_published(application, PUBLICATION) if e.type == "RoleRevoked.v2"]
    assert [(e.data["study_id"], e.data["role"], e.data["reason"]) for e in published] == [
        (SYN, "auditor", "left the study")
    ]
    # the revocation view withdraws the study's tokens with the role, not the first study's
    key = withdrawal(published[0])
    assert key == role_key("aud.sun", "auditor", SYN) == f"role:{SYN}/aud.sun:auditor"
    of_study = VERIFIER.principal(ISSUER.access_token(
        Principal("aud.sun", "A", "SH-1", frozenset({Role.AUDITOR}), "s", study_id=SYN),
        datetime.now(UTC))[0])  # fmt: skip
    of_first = VERIFIER.principal(first.json()["access_token"])
    assert key in keys_of(of_study)
    assert key not in keys_of(of_first)
    assert role_key("aud.sun", "auditor") in keys_of(of_first)  # the first study's, unchanged


@pytest.mark.part11("11.10(g)", "accounts")
async def test_separation_of_duties_applies_per_study_grant(client: httpx.AsyncClient) -> None:
    await create(client, "pi.gao", Role.INVESTIGATOR)
    # an administrator of the second study may be an investigator in the first
    assert (await grant(client, "pi.gao", Role.ADMINISTRATOR)).status_code == 200
    # but not hold a clinical role beside it in the same study
    refused = await grant(client, "pi.gao", Role.INVESTIGATOR)
    assert code(refused) == (403, "incompatible_roles")
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    first = await client.post("/users/pi.gao/roles", json={"role": "administrator"}, headers=admin)
    assert code(first) == (403, "incompatible_roles")  # in the first study, as before


@pytest.mark.part11("11.10(g)", "accounts")
async def test_accounts_are_created_deactivated_and_unlocked_by_the_first_studys_admin(
    client: httpx.AsyncClient, application: IdentityApplication
) -> None:
    await create(client, "mon.he", Role.MONITOR)
    body = {"user_id": "new.one", "printed_name": "N", "site": "SH-1", "roles": [],
            "password": PASSWORD}  # fmt: skip
    syn = bearer(SYN_ADMIN)
    for path, payload in (
        (f"/studies/{SYN}/users", body),
        (f"/studies/{SYN}/users/mon.he/deactivation", {"reason": "r"}),
        (f"/studies/{SYN}/users/mon.he/unlock", {"reason": "r"}),
    ):
        answer = await client.post(path, json=payload, headers=syn)
        assert code(answer) == (403, "first_study_administrator_required"), path
        denial = stored(application)[-1]
        assert denial.denial.reason_code == "first_study_administrator_required"
        assert denial.denial.study_id == SYN
    # a token of the first study is refused by the second study's routes, and back
    admin = await logged_in(client, "admin", ADMIN_PASSWORD)
    across = await client.get(f"/studies/{SYN}/users/mon.he", headers=admin)
    assert code(across) == (403, "study_not_granted")
    assert code(await client.get("/users/mon.he", headers=syn)) == (403, "study_not_granted")


@pytest.mark.part11("11.200(a)")
async def test_a_signing_assertion_is_for_the_tokens_study_alone(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "inv.qin", Role.INVESTIGATOR)
    assert (await grant(client, "inv.qin", Role.INVESTIGATOR)).status_code == 200
    token = (await log_in(client, "inv.qin")).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {"meaning": "approval", "purpose": "enrollment/eligibility/S-9", "password": PASSWORD,
            "user_id": "inv.qin"}  # fmt: skip
    assert code(await client.post("/signing", json=body, headers=headers)) == (
        403,
        "study_not_granted",
    )
    answer = await client.post(f"/studies/{SYN}/signing", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assertion = VERIFIER.signing_assertion(answer.json()["assertion"])
    principal = VERIFIER.principal(token)
    assert assertion.study_id == principal.study_id == SYN
    check_assertion(assertion, principal, Meaning.APPROVAL, "enrollment/eligibility/S-9")
    in_first = replace(principal, study_id=DEFAULT_STUDY_ID)  # the same session, another study
    with pytest.raises(SignatureRefused, match="study"):
        check_assertion(assertion, in_first, Meaning.APPROVAL, "enrollment/eligibility/S-9")


async def test_another_service_takes_a_studys_token_under_that_study_alone(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await create(client, "coord.yu", Role.STUDY_COORDINATOR)
    assert (await grant(client, "coord.yu", Role.STUDY_COORDINATOR)).status_code == 200
    token = (await log_in(client, "coord.yu")).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    enrollment = EnrollmentApplication(env=MEMORY)
    outbox = memory_outbox(enrollment, ENROLLMENT)
    app = enrollment_app(enrollment, Serving(VERIFIER, outbox, clock, studies=STUDIES))
    async with asgi_client(app, "enrollment") as other:
        refused = await other.get("/subjects/S-404", headers=headers)
        assert code(refused) == (403, "study_not_granted")
        assert code(await other.get(f"/studies/{SYN}/subjects/S-404", headers=headers)) == (
            404,
            "subject_not_found",
        )
        first = await logged_in(client, "coord.yu", PASSWORD)
        assert code(await other.get(f"/studies/{SYN}/subjects/S-404", headers=first)) == (
            403,
            "study_not_granted",
        )
