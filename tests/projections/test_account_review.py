"""The account review (``services.projections.accounts``), from identity events as the
ledger holds them: every change with who, when and why, refusals of account changes only,
and the accounts that hold a forbidden pair (made before the rule, or under another
setting), whether or not a role they held is still known."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.projections.accounts import review
from shared.kernel.envelope import CloudEvent
from shared.kernel.permissions import SeparationOfDuties
from shared.study import DEFAULT_STUDY_ID
from tests.support import identity_event as published

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def identity_event(event_type: str, by: str = "ada.admin", **data: Any) -> CloudEvent:
    actor = {"user_id": by, "printed_name": by.title(), "role": "administrator", "site": "ZJU-1"}
    return published(event_type, AT, actor=actor, correlation_id="c-1", **data)


HISTORY = [
    identity_event("UserCreated.v1", user_id="old.hand", roles=["administrator", "investigator"]),
    identity_event("UserCreated.v1", user_id="lin.wei", roles=["sub_investigator", "retired"]),
    identity_event("RoleGranted.v1", user_id="lin.wei", role="investigator"),
    identity_event("RoleRevoked.v1", user_id="lin.wei", role="sub_investigator", reason="promoted"),
    identity_event("LoginSucceeded.v1", by="lin.wei", user_id="lin.wei", session_id="s"),
    identity_event("AccessDenied.v1", command="identity.unlock_user", reason_code="own_account"),
    identity_event(
        "AccessDenied.v1",
        by="lin.wei",
        command="enrollment.enrol",
        reason_code="role_not_permitted",
    ),
]


@pytest.mark.part11("accounts")
def test_the_review_lists_account_changes_and_refused_account_changes_only() -> None:
    found = review(enumerate(HISTORY, 1), SeparationOfDuties.default())

    changes = [(c["position"], c["event_type"], c["user_id"]) for c in found["changes"]]
    assert changes == [
        (1, "UserCreated.v1", "old.hand"),
        (2, "UserCreated.v1", "lin.wei"),
        (3, "RoleGranted.v1", "lin.wei"),
        (4, "RoleRevoked.v1", "lin.wei"),
        (6, "AccessDenied.v1", "ada.admin"),
    ]
    revoked = found["changes"][3]
    assert (revoked["reason"], revoked["actor"]["user_id"]) == ("promoted", "ada.admin")
    assert found["changes"][4]["refused"] and found["changes"][4]["change"] == {
        "command": "identity.unlock_user",
        "reason_code": "own_account",
    }


def test_the_review_names_who_holds_a_forbidden_pair_now() -> None:
    found = review(enumerate(HISTORY, 1), SeparationOfDuties.default())

    assert found["incompatible_roles"] == [
        {
            "user_id": "old.hand",
            "roles": ["administrator", "investigator"],
            "active": True,
            "conflicts": [["investigator", "administrator"]],
        }
    ]
    assert (
        review(enumerate(HISTORY, 1), SeparationOfDuties.parse("none"))["incompatible_roles"] == []
    )


@pytest.mark.part11("review")
def test_one_account_s_review_holds_its_changes_and_those_it_made() -> None:
    found = review(enumerate(HISTORY, 1), SeparationOfDuties.default(), user_id="lin.wei")

    assert [c["position"] for c in found["changes"]] == [2, 3, 4]
    assert found["incompatible_roles"] == []


def test_a_refused_change_of_another_account_is_listed_under_that_account() -> None:
    """``AccessDenied.v2`` names the account; a ``.v1`` refusal names only the administrator."""
    history = [
        *HISTORY,
        identity_event(
            "AccessDenied.v2",
            command="identity.grant_role",
            reason_code="incompatible_roles",
            target_user_id="lin.wei",
        ),
    ]
    found = review(enumerate(history, 1), SeparationOfDuties.default(), user_id="lin.wei")

    assert [c["position"] for c in found["changes"]] == [2, 3, 4, 8]
    refused = found["changes"][3]
    assert (refused["user_id"], refused["refused"], refused["actor"]["user_id"]) == (
        "lin.wei",
        True,
        "ada.admin",
    )
    assert refused["change"]["target_user_id"] == "lin.wei"
    by_admin = review(enumerate(history, 1), SeparationOfDuties.default(), user_id="ada.admin")
    assert [c["position"] for c in by_admin["changes"] if c["refused"]] == [6, 8]


# A second study's ledger: a grant there names its study (RoleGranted.v2); the ledger may
# hold the study's refusals and logins, but never account creation (the first study's).
SECOND = "SYN-CART-2"
SECOND_HISTORY = [
    identity_event(
        "RoleGranted.v2",
        user_id="lin.wei",
        study_id=SECOND,
        site="PUMCH-1",
        role="investigator",
        reason="site PI",
    ),
    identity_event(
        "RoleGranted.v2",
        user_id="lin.wei",
        study_id=SECOND,
        site="PUMCH-1",
        role="administrator",
        reason="cover",
    ),
    identity_event(
        "RoleGranted.v2",
        user_id="mo.li",
        study_id=SECOND,
        site="PUMCH-2",
        role="monitor",
        reason="CRA",
    ),
    identity_event(
        "RoleRevoked.v2", user_id="mo.li", study_id=SECOND, role="monitor", reason="left"
    ),
    # not this study's: another study's grant, and a first-study grant (v1)
    identity_event(
        "RoleGranted.v2",
        user_id="mo.li",
        study_id="OTHER-3",
        site="X-1",
        role="administrator",
        reason="other study",
    ),
    identity_event("RoleGranted.v1", user_id="mo.li", role="investigator"),
]


@pytest.mark.part11("accounts")
def test_a_study_s_review_holds_the_roles_and_sites_granted_in_that_study_alone() -> None:
    found = review(enumerate(SECOND_HISTORY, 1), SeparationOfDuties.default(), study_id=SECOND)

    assert found["study_id"] == SECOND
    assert [(c["position"], c["event_type"], c["user_id"]) for c in found["changes"]] == [
        (1, "RoleGranted.v2", "lin.wei"),
        (2, "RoleGranted.v2", "lin.wei"),
        (3, "RoleGranted.v2", "mo.li"),
        (4, "RoleRevoked.v2", "mo.li"),
    ]
    assert found["changes"][0]["change"] == {
        "role": "investigator",
        "study_id": SECOND,
        "site": "PUMCH-1",
    }
    # the account's status is the first study's ledger's: not known here
    assert found["accounts"] == [
        {
            "user_id": "lin.wei",
            "site": "PUMCH-1",
            "roles": ["administrator", "investigator"],
            "active": None,
        },
    ]
    # separation of duties per study grant: the first study's roles play no part
    assert [(a["user_id"], a["conflicts"]) for a in found["incompatible_roles"]] == [
        ("lin.wei", [["investigator", "administrator"]])
    ]


def test_the_first_study_s_review_ignores_grants_that_name_another_study() -> None:
    found = review(enumerate([*HISTORY, *SECOND_HISTORY], 1), SeparationOfDuties.default())

    assert found["study_id"] == DEFAULT_STUDY_ID
    assert not [c for c in found["changes"] if c["event_type"].endswith(".v2")
                and c["event_type"].startswith("Role")]  # fmt: skip
    held = {a["user_id"]: (a["site"], a["roles"], a["active"]) for a in found["accounts"]}
    assert held["lin.wei"] == (None, ["investigator", "retired"], True)
    assert held["mo.li"] == (None, ["investigator"], True)
