"""What the identity relay publishes: each account event under its versioned type, keyed
by the account, valid against its contract, and never a password or its hash."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.identity import errors
from services.identity.application import IdentityApplication
from services.identity.domain import AccountPolicy
from services.identity.publication import PUBLICATION
from shared.contracts.identity import IDENTITY_CONTRACTS
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Actor, Attribution, Meaning, Provenance, Role
from tests.support import MEMORY, as_published

PASSWORD = "lupus-trial-2026!"
NEW_PASSWORD = "systemic-lupus-2027!"
ADMIN = Attribution(
    Provenance(Actor("admin", "Ada Admin", "administrator", "ZJU"), "corr-1"),
    datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
)


Published = tuple[list[CloudEvent], IdentityApplication]


@pytest.fixture(scope="module")
def published() -> Published:
    """One account's whole life (once: every password is hashed for real, slowly)."""
    app = IdentityApplication(
        env=MEMORY,
        policy=AccountPolicy(max_failed_attempts=2),
    )
    app.create_user("lin.wei", "Lin Wei", "ZJU-1", frozenset({Role.INVESTIGATOR}), PASSWORD,
                    ADMIN)  # fmt: skip
    app.grant_role("lin.wei", Role.MONITOR, ADMIN)
    session = app.log_in("lin.wei", PASSWORD, ADMIN)
    app.authenticate_signing(session, "lin.wei", PASSWORD, Meaning.APPROVAL, "tests/1", ADMIN)
    app.change_password("lin.wei", PASSWORD, NEW_PASSWORD, ADMIN)
    app.log_out(session, ADMIN)
    for _ in range(2):
        with pytest.raises((errors.InvalidCredentials, errors.AccountLocked)):
            app.log_in("lin.wei", "wrong-password-123", ADMIN)
    app.unlock_user("lin.wei", "called the help desk", ADMIN)
    app.revoke_role("lin.wei", Role.MONITOR, "left the monitoring team", ADMIN)
    app.deactivate_user("lin.wei", "left the site", ADMIN)
    return as_published(app, PUBLICATION), app


def test_every_account_event_is_published_under_its_versioned_type_keyed_by_account(
    published: Published,
) -> None:
    events, _ = published
    assert [e.type for e in events] == [
        "UserCreated.v1",
        "RoleGranted.v1",
        "LoginSucceeded.v1",
        "SigningAuthenticated.v1",
        "PasswordChanged.v1",
        "LoggedOut.v1",
        "LoginFailed.v1",
        "LoginFailed.v1",
        "AccountLocked.v1",
        "AccountUnlocked.v1",
        "RoleRevoked.v1",
        "UserDeactivated.v1",
    ]
    assert {e.source for e in events} == {"/trial-ledger/identity"}


def test_every_payload_validates_against_its_contract(published: Published) -> None:
    events, _ = published
    for event in events:
        contract = IDENTITY_CONTRACTS[event.type].model_validate(event.data)
        assert contract.source.service == "identity"


def test_no_password_nor_its_hash_is_ever_published(published: Published) -> None:
    events, app = published
    hashes = {event.password_hash for _, event in app.stored_events()
              if hasattr(event, "password_hash")}  # fmt: skip
    assert len(hashes) == 2
    for event in events:
        text = event.to_kafka_value().decode()
        assert PASSWORD not in text and NEW_PASSWORD not in text
        assert not any(h in text for h in hashes)
        assert "password_hash" not in json.loads(text)["data"]


def test_a_signing_names_its_meaning_and_purpose(published: Published) -> None:
    events, _ = published
    signing = events[3].data
    assert (signing["meaning"], signing["purpose"]) == ("approval", "tests/1")


def test_a_grant_publishes_its_reason_and_a_grant_stored_before_reasons_still_replays() -> None:
    app = IdentityApplication(env=MEMORY)
    app.create_user("lin.wei", "Lin Wei", "ZJU-1", frozenset({Role.INVESTIGATOR}), PASSWORD,
                    ADMIN)  # fmt: skip
    app.grant_role("lin.wei", Role.MONITOR, ADMIN, "monitors site ZJU-2 from January")
    app.grant_role("lin.wei", Role.AUDITOR, ADMIN)
    stored = list(app.recorder.select_notifications(start=1, limit=10))
    # the second grant as it was stored before grants took a reason: no reason at all
    state = json.loads(stored[2].state)
    del state["reason"]
    stored[2] = dataclasses.replace(stored[2], state=json.dumps(state).encode())

    events: list[Any] = [app.mapper.to_domain_event(n) for n in stored]
    published = [PUBLICATION.to_contract(event) for event in events]
    user = None
    for event in events:
        user = event.mutate(user)

    assert [p.reason for p in published[1:]] == ["monitors site ZJU-2 from January", None]
    assert user is not None and user.roles == {Role.INVESTIGATOR, Role.MONITOR, Role.AUDITOR}
