"""What the identity service publishes: each stored account event mapped, by class, to its
contract (never the password hash). An account event names no subject: it is keyed by
the account's record id, so one account's events stay in order."""

from __future__ import annotations

from typing import Any

from services.identity.domain import User
from shared.contracts import identity as contracts
from shared.contracts.security import AccessDeniedV1, AccessDeniedV2
from shared.kernel.publication import Fields, Mapped, Publication, fields_of

SERVICE = "identity"


def _account(contract: type[contracts.AccountEvent], *names: str) -> Mapped:
    """``contract`` with the account's user id and the event's fields ``names``."""
    own: Fields = fields_of(*names)

    def fields(event: Any) -> dict[str, Any]:
        return {"user_id": event.user_id, **own(event)}

    return contract, fields


def _granted(event: Any) -> dict[str, Any]:
    """A grant, with its reason in the envelope's ``reason`` when one was given (a grant
    stored before grants took a reason has none: published, as it was, with null)."""
    return {
        "user_id": event.user_id,
        "role": event.role,
        "reason": getattr(event, "reason", "") or None,
    }


def _granted_in_study(event: Any) -> dict[str, Any]:
    """A grant in a study after the first, with its reason as a first-study grant's."""
    return {**_granted(event), "study_id": event.study_id, "site": event.site}


PUBLICATION = Publication(
    SERVICE,
    {User: contracts.RECORD_TYPE},
    {
        User.UserCreated: _account(contracts.UserCreatedV1, "printed_name", "site", "roles"),
        User.RoleGranted: (contracts.RoleGrantedV1, _granted),
        User.RoleRevoked: _account(contracts.RoleRevokedV1, "role", "reason"),
        User.StudyRoleGranted: (contracts.RoleGrantedV2, _granted_in_study),
        User.StudyRoleRevoked: _account(contracts.RoleRevokedV2, "study_id", "role", "reason"),
        User.UserDeactivated: _account(contracts.UserDeactivatedV1, "reason"),
        User.AccountUnlocked: _account(contracts.AccountUnlockedV1, "reason"),
        User.PasswordChanged: _account(contracts.PasswordChangedV1),
        User.LoginSucceeded: _account(contracts.LoginSucceededV1, "session_id"),
        User.LoginFailed: _account(contracts.LoginFailedV1, "attempt"),
        User.AccountLocked: _account(contracts.AccountLockedV1, "failed_attempts"),
        User.SigningAuthenticated: _account(
            contracts.SigningAuthenticatedV1, "session_id", "meaning", "purpose", "assertion_id"
        ),
        User.SigningFailed: _account(contracts.SigningFailedV1, "session_id", "attempt"),
        User.LoggedOut: _account(contracts.LoggedOutV1, "session_id"),
    },
    # a refused change of an account names the account (AccessDenied.v2)
    denials=(AccessDeniedV1, AccessDeniedV2),
    # an account event happens when it is recorded
)
to_contract = PUBLICATION.to_contract
