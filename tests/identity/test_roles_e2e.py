"""The role x command table (``shared.kernel.permissions``), against all six running services:
every row of every service, for every role, answers 403 ``role_not_permitted`` exactly
when the table does not list the role, and 401 without a valid token.

The expected roles are read from the table, which docs/security.md is generated from
(``tests/shared/test_permissions.py`` fails when they differ); what this test checks is
that each running service answers by it. A row with no request here fails the test.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.identity import IDENTITY_CONTRACTS
from shared.kernel.envelope import CloudEvent
from shared.kernel.permissions import TABLES
from shared.kernel.provenance import Role
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
ROLES = tuple(role.value for role in Role)
# rows no route reaches with a bearer token: the projections' command line, and the
# console's pages, which take a session cookie and answer with pages (auditors only:
# tests/shared/test_permissions.py; a monitor refused in a real browser: tests/browser)
COMMAND_LINE = {"projections/projections.rebuild", "projections/projections.console"}
LAST = "identity/identity.log_out"  # it ends the login session the others run in
# "service/command" -> roles that may run it
ROWS = {
    f"{service}/{rule.command}": {str(role) for role in rule.roles}
    for service, rows in TABLES.items()
    for rule in rows.rules
}
TABLE: dict[str, set[str]] = {
    command: ROWS[command]
    for command in sorted(ROWS, key=lambda command: command == LAST)
    if command not in COMMAND_LINE
}


def request_of(
    command: str, role: str, signature: dict[str, dict[str, str]]
) -> tuple[str, str, Any]:
    """Method, path and a body; subjects and users named here do not exist. The bodies
    are well-formed where the first services were tested so, ``{}`` elsewhere: a refused
    role is answered 403 before the body is read, a permitted one 422."""
    missing, no_record = "S-NOPE", "00000000-0000-0000-0000-000000000000"
    bodies: dict[str, tuple[str, str, Any]] = {
        "enrollment/enrollment.register_subject": ("POST", "/subjects", {"subject_id": f"S-{role[:3].upper()}", "site_id": "ZJU-1"}),
        "enrollment/enrollment.sign_consent": ("POST", f"/subjects/{missing}/consent", {
            "form_version": "v1", "signed_on": "2026-11-02", "obtained_by": "x",
            "signature": signature["responsibility"],
        }),
        "enrollment/enrollment.record_screening": ("POST", f"/subjects/{missing}/screening", screening_json()),
        "enrollment/enrollment.decide_eligibility": ("POST", f"/subjects/{missing}/eligibility", {"signature": signature["approval"]}),
        "enrollment/enrollment.enrol": ("POST", f"/subjects/{missing}/enrollment", {"dose_level": 1}),
        "enrollment/enrollment.withdraw": ("POST", f"/subjects/{missing}/withdrawal", {"reason": "r"}),
        "enrollment/enrollment.correct_value": ("POST", f"/subjects/{missing}/corrections", {
            "field": "consent.form_version", "new_value": "v2", "reason": "r",
        }),
        "enrollment/enrollment.record_death": ("POST", f"/subjects/{missing}/death", {"cause": "c"}),
        "enrollment/enrollment.read_subject": ("GET", f"/subjects/{missing}", None),
        "assessments/assessments.assess_activity": ("POST", f"/subjects/{missing}/disease-activity", {
            "label": "l", "assessed_at": "2026-11-20T09:00:00Z", "pga": "0",
            "items": {}, "prednisone_mg_per_day": "0", "maintenance_immunosuppression_only": True,
        }),
        "assessments/assessments.record_measurement": ("POST", f"/subjects/{missing}/autoantibodies", {
            "sampled_at": "2026-11-20T09:00:00Z",
            "results": [{"analyte": "ana", "value": "320", "unit": "titre", "reference_high": "80"}],
        }),
        "assessments/assessments.assess_remission": ("POST", f"/subjects/{missing}/remission", {
            "visit_event_id": "00000000-0000-0000-0000-000000000000", "response": "complete",
            "signature": signature["approval"],
        }),
        "assessments/assessments.report_progression": ("POST", f"/subjects/{missing}/progression", {
            "kind": "flare", "description": "d", "occurred_at": "2026-11-20T09:00:00Z",
        }),
        "assessments/assessments.read": ("GET", f"/subjects/{missing}/assessments", None),
        "identity/identity.create_user": ("POST", "/users", {
            "user_id": f"new.{role}", "printed_name": "N", "site": "Z", "roles": ["auditor"],
            "password": "new user passphrase",
        }),
        "identity/identity.grant_role": ("POST", "/users/no.one/roles", {"role": "auditor"}),
        "identity/identity.revoke_role": ("POST", "/users/no.one/role-revocations", {"role": "auditor", "reason": "r"}),
        "identity/identity.deactivate_user": ("POST", "/users/no.one/deactivation", {"reason": "r"}),
        "identity/identity.unlock_user": ("POST", "/users/no.one/unlock", {"reason": "r"}),
        "identity/identity.read_users": ("GET", "/users/no.one", None),
        "identity/identity.sign": ("POST", "/signing", {}),
        "identity/identity.log_out": ("POST", "/logout", None),
        "enrollment/store.read": ("GET", "/store/head", None),
        "assessments/store.read": ("GET", "/store/events", None),
        "identity/store.read": ("GET", "/store/head", None),
        "infusion/infusion.record_leukapheresis": ("POST", f"/subjects/{missing}/leukapheresis", {}),
        "infusion/infusion.release_product": ("POST", f"/subjects/{missing}/products", {}),
        "infusion/infusion.record_lymphodepletion": ("POST", f"/subjects/{missing}/lymphodepletion", {}),
        "infusion/infusion.infuse": ("POST", f"/subjects/{missing}/infusion", {}),
        "infusion/infusion.decline_infusion": ("POST", f"/subjects/{missing}/infusion-not-given", {}),
        "infusion/infusion.interrupt_infusion": ("POST", f"/subjects/{missing}/infusion-interruptions", {}),
        "infusion/infusion.read_treatment": ("GET", f"/subjects/{missing}", None),
        "infusion/store.read": ("GET", "/store/head", None),
        "adverse_events/adverse_events.report": ("POST", f"/subjects/{missing}/adverse-events", {}),
        "adverse_events/adverse_events.grade": ("POST", f"/adverse-events/{no_record}/grade", {}),
        "adverse_events/adverse_events.assess_seriousness": ("POST", f"/adverse-events/{no_record}/seriousness", {}),
        "adverse_events/adverse_events.assess_causality": ("POST", f"/adverse-events/{no_record}/causality", {}),
        "adverse_events/adverse_events.adjudicate_dlt": ("POST", f"/adverse-events/{no_record}/dlt", {}),
        "adverse_events/adverse_events.approve_safety_review": ("POST", "/safety-reviews", {}),
        "adverse_events/adverse_events.resolve": ("POST", f"/adverse-events/{no_record}/resolution", {}),
        "adverse_events/adverse_events.read": ("GET", f"/adverse-events/{no_record}", None),
        "adverse_events/store.read": ("GET", "/store/events", None),
        "projections/projections.trail": ("GET", "/trail?limit=1", None),
        "projections/projections.subject": ("GET", f"/subjects/{missing}", None),
        "projections/projections.trial": ("GET", "/trial", None),
        "projections/projections.endpoints": ("GET", "/endpoints", None),
        "projections/projections.plot": ("GET", "/plots/swimmer.svg", None),
        "projections/projections.verify": ("GET", "/verify?stores=false", None),
        "projections/projections.proof": ("GET", "/proofs/inclusion/1", None),
        "projections/projections.export": ("GET", f"/export?subject_id={missing}", None),
        "projections/projections.reconcile": ("GET", "/reconcile", None),
    }  # fmt: skip
    return bodies[command]


async def call(
    stack: Stack, command: str, method: str, path: str, body: Any, headers: dict[str, str]
) -> Any:
    client = getattr(stack, command.split("/")[0])
    return await client.request(method, path, json=body, headers=headers)


def test_every_row_of_the_table_has_a_request() -> None:
    signature: dict[str, dict[str, str]] = {"approval": {}, "responsibility": {}}
    assert all(request_of(command, INV, signature) for command in TABLE)
    assert {command.split("/")[0] for command in TABLE} == set(TABLES)


@pytest.mark.part11("11.10(g)")
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


@pytest.mark.part11("11.10(d)")
async def test_every_command_without_a_valid_token_is_401(stack: Stack) -> None:
    nobody = {"approval": {"assertion": "x"}, "responsibility": {"assertion": "x"}}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        for command in TABLE:
            method, path, body = request_of(command, INV, nobody)
            response = await call(stack, command, method, path, body, headers)
            assert response.status_code == 401, (command, response.text)
            assert response.json()["code"] == "unauthenticated"


@pytest.mark.part11("11.300(d)", "accounts")
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
