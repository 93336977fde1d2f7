"""The role x command table, against the running identity, enrollment and assessments
services.

The table below is written out by hand from docs/security.md, not read from the code,
so that a change of the code's table has to be a change of the documented one too.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.identity import IDENTITY_CONTRACTS
from shared.envelope import CloudEvent
from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack
from tests.support import read_topic, screening_json

pytestmark = pytest.mark.integration
PASSWORD = "role table passphrase"

INV, S, C, P, M, A, D = (
    "investigator",
    "sub_investigator",
    "study_coordinator",
    "cell_therapy_pharmacist",
    "monitor",
    "auditor",
    "administrator",
)
ROLES = (INV, S, C, P, M, A, D)

# command -> roles that may run it
TABLE: dict[str, set[str]] = {
    "enrollment.register_subject": {INV, S, C},
    "enrollment.sign_consent": {INV, S},
    "enrollment.record_screening": {INV, S, C},
    "enrollment.decide_eligibility": {INV},
    "enrollment.enrol": {INV, S},
    "enrollment.withdraw": {INV, S},
    "enrollment.correct_value": {INV, S, C},
    "enrollment.record_death": {INV, S},
    "enrollment.read_subject": {INV, S, C, P, M, A},
    "assessments.assess_activity": {INV, S},
    "assessments.record_measurement": {INV, S, C},
    "assessments.assess_remission": {INV},
    "assessments.report_progression": {INV, S},
    "assessments.read": {INV, S, C, M, A},
    "identity.create_user": {D},
    "identity.grant_role": {D},
    "identity.revoke_role": {D},
    "identity.deactivate_user": {D},
    "identity.unlock_user": {D},
    "identity.read_users": {D, M, A},
    # every command service: its store read back, for completeness checks (docs/auditing.md)
    "enrollment/store.read": {M, A},
    "assessments/store.read": {M, A},
    "identity/store.read": {M, A},
}


def request_of(
    command: str, role: str, signature: dict[str, dict[str, str]]
) -> tuple[str, str, Any]:
    """Method, path and a well-formed body; subjects and users named here do not exist."""
    missing = "S-NOPE"
    bodies: dict[str, tuple[str, str, Any]] = {
        "enrollment.register_subject": ("POST", "/subjects", {"subject_id": f"S-{role[:3].upper()}", "site_id": "ZJU-1"}),
        "enrollment.sign_consent": ("POST", f"/subjects/{missing}/consent", {
            "form_version": "v1", "signed_on": "2026-11-02", "obtained_by": "x",
            "signature": signature["responsibility"],
        }),
        "enrollment.record_screening": ("POST", f"/subjects/{missing}/screening", screening_json()),
        "enrollment.decide_eligibility": ("POST", f"/subjects/{missing}/eligibility", {"signature": signature["approval"]}),
        "enrollment.enrol": ("POST", f"/subjects/{missing}/enrolment", {"dose_level": 1}),
        "enrollment.withdraw": ("POST", f"/subjects/{missing}/withdrawal", {"reason": "r"}),
        "enrollment.correct_value": ("POST", f"/subjects/{missing}/corrections", {
            "field": "consent.form_version", "new_value": "v2", "reason": "r",
        }),
        "enrollment.record_death": ("POST", f"/subjects/{missing}/death", {"cause": "c"}),
        "enrollment.read_subject": ("GET", f"/subjects/{missing}", None),
        "assessments.assess_activity": ("POST", f"/subjects/{missing}/disease-activity", {
            "label": "l", "assessed_at": "2026-11-20T09:00:00Z", "pga": "0",
            "items": {}, "prednisone_mg_per_day": "0", "maintenance_immunosuppression_only": True,
        }),
        "assessments.record_measurement": ("POST", f"/subjects/{missing}/autoantibodies", {
            "sampled_at": "2026-11-20T09:00:00Z",
            "results": [{"analyte": "ana", "value": "320", "unit": "titre", "reference_high": "80"}],
        }),
        "assessments.assess_remission": ("POST", f"/subjects/{missing}/remission", {
            "visit_event_id": "00000000-0000-0000-0000-000000000000", "response": "complete",
            "signature": signature["approval"],
        }),
        "assessments.report_progression": ("POST", f"/subjects/{missing}/progression", {
            "kind": "flare", "description": "d", "occurred_at": "2026-11-20T09:00:00Z",
        }),
        "assessments.read": ("GET", f"/subjects/{missing}/assessments", None),
        "identity.create_user": ("POST", "/users", {
            "user_id": f"new.{role}", "printed_name": "N", "site": "Z", "roles": ["auditor"],
            "password": "new user passphrase",
        }),
        "identity.grant_role": ("POST", "/users/no.one/roles", {"role": "auditor"}),
        "identity.revoke_role": ("POST", "/users/no.one/role-revocations", {"role": "auditor", "reason": "r"}),
        "identity.deactivate_user": ("POST", "/users/no.one/deactivation", {"reason": "r"}),
        "identity.unlock_user": ("POST", "/users/no.one/unlock", {"reason": "r"}),
        "identity.read_users": ("GET", "/users/no.one", None),
        "enrollment/store.read": ("GET", "/store/head", None),
        "assessments/store.read": ("GET", "/store/events", None),
        "identity/store.read": ("GET", "/store/head", None),
    }  # fmt: skip
    return bodies[command]


async def call(
    stack: Stack, command: str, method: str, path: str, body: Any, headers: dict[str, str]
) -> Any:
    service = command.split("/")[0] if "/" in command else command.split(".")[0]
    client = {"enrollment": stack.enrollment, "assessments": stack.assessments}.get(
        service, stack.identity
    )
    return await client.request(method, path, json=body, headers=headers)


async def test_every_command_answers_the_role_table(stack: Stack) -> None:
    outcomes: dict[tuple[str, str], int] = {}
    for role in ROLES:
        user = f"user.{role}"
        await stack.create_user(user, PASSWORD, role)
        session = await stack.log_in(user, PASSWORD)
        signature = {
            "responsibility": await stack.signature(
                session, "responsibility", "enrollment/consent/S-NOPE", PASSWORD, user
            ),
            "approval": await stack.signature(
                session, "approval", "enrollment/eligibility/S-NOPE", PASSWORD
            ),
        }
        for command in TABLE:
            method, path, body = request_of(command, role, signature)
            response = await call(stack, command, method, path, body, session)
            outcomes[(command, role)] = response.status_code
            if role in TABLE[command]:
                assert response.status_code not in (401, 403), (command, role, response.text)
            else:
                assert response.status_code == 403, (command, role, response.text)
                assert response.json()["code"] == "role_not_permitted"
    assert len(outcomes) == len(TABLE) * len(ROLES)


async def test_every_command_without_a_valid_token_is_401(stack: Stack) -> None:
    nobody = {"approval": {"assertion": "x"}, "responsibility": {"assertion": "x"}}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        for command in TABLE:
            method, path, body = request_of(command, INV, nobody)
            response = await call(stack, command, method, path, body, headers)
            assert response.status_code == 401, (command, response.text)
            assert response.json()["code"] == "unauthenticated"


async def test_account_changes_denials_and_lockout_appear_on_the_identity_topic(
    stack: Stack,
) -> None:
    await stack.create_user("coord.li", PASSWORD, C)
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)
    await stack.identity.post("/users/coord.li/roles", json={"role": S}, headers=admin)
    await stack.identity.post(
        "/users/coord.li/role-revocations", json={"role": C, "reason": "promoted"}, headers=admin
    )
    coordinator = await stack.log_in("coord.li", PASSWORD)
    denied = await stack.identity.post(
        "/users/coord.li/roles", json={"role": D}, headers=coordinator
    )
    assert denied.status_code == 403
    for _ in range(5):
        await stack.identity.post(
            "/login", json={"user_id": "coord.li", "password": "wrong guess!"}
        )
    await stack.identity.post(
        "/users/coord.li/deactivation", json={"reason": "left"}, headers=admin
    )

    settings = stack.identity_settings
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=15)
    events = [CloudEvent.from_kafka_value(r.value) for r in records]
    events.sort(key=lambda e: int(e.sequence))  # across records, the service's log order
    for event in events:
        IDENTITY_CONTRACTS[event.type].model_validate(event.data)
        assert "password_hash" not in event.data
    account = [
        (e.type, e.data.get("role") or e.data.get("command"))
        for e in events
        if e.data.get("user_id") == "coord.li" or e.data["actor"]["user_id"] == "coord.li"
    ]
    assert account == [
        ("UserCreated.v1", None),
        ("RoleGranted.v1", S),
        ("RoleRevoked.v1", C),
        ("LoginSucceeded.v1", None),
        ("AccessDenied.v1", "identity.grant_role"),
        ("LoginFailed.v1", None),
        ("LoginFailed.v1", None),
        ("LoginFailed.v1", None),
        ("LoginFailed.v1", None),
        ("LoginFailed.v1", None),
        ("AccountLocked.v1", None),
        ("UserDeactivated.v1", None),
    ]
    locked = next(e for e in events if e.type == "AccountLocked.v1")
    assert locked.data["failed_attempts"] == 5
