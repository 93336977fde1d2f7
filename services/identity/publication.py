"""What the identity service publishes: each stored account event as its contract."""

from __future__ import annotations

from typing import Any

from shared.access import access_denied_contract
from shared.contracts import identity as contracts
from shared.envelope import ActorV1, EventData, SourceV1
from shared.provenance import Provenance
from shared.publication import event_id

SERVICE = "identity"

# Fields each event publishes besides the common ones (never the password hash).
_FIELDS: dict[str, tuple[type[contracts.AccountEvent], tuple[str, ...]]] = {
    "UserCreated": (contracts.UserCreatedV1, ("printed_name", "site", "roles")),
    "RoleGranted": (contracts.RoleGrantedV1, ("role",)),
    "RoleRevoked": (contracts.RoleRevokedV1, ("role", "reason")),
    "UserDeactivated": (contracts.UserDeactivatedV1, ("reason",)),
    "AccountUnlocked": (contracts.AccountUnlockedV1, ("reason",)),
    "PasswordChanged": (contracts.PasswordChangedV1, ()),
    "LoginSucceeded": (contracts.LoginSucceededV1, ("session_id",)),
    "LoginFailed": (contracts.LoginFailedV1, ("attempt",)),
    "AccountLocked": (contracts.AccountLockedV1, ("failed_attempts",)),
    "SigningAuthenticated": (
        contracts.SigningAuthenticatedV1,
        ("session_id", "meaning", "purpose", "assertion_id"),
    ),
    "SigningFailed": (contracts.SigningFailedV1, ("session_id", "attempt")),
    "LoggedOut": (contracts.LoggedOutV1, ("session_id",)),
}


def to_contract(event: Any) -> EventData:
    """Map a stored identity event to its published contract."""
    name = type(event).__name__
    identity = event_id(event.originator_id, event.originator_version)
    if name == "AccessDenied":
        return access_denied_contract(event, SERVICE, identity)
    contract, fields = _FIELDS[name]
    provenance: Provenance = event.provenance
    actor = provenance.actor
    return contract(
        event_id=identity,
        subject_id=None,
        user_id=event.user_id,
        record_type=contracts.RECORD_TYPE,
        record_id=event.originator_id,
        version=event.originator_version,
        occurred_at=event.timestamp,  # an account event happens when it is recorded
        recorded_at=event.timestamp,
        actor=ActorV1(
            user_id=actor.user_id, printed_name=actor.printed_name, role=actor.role, site=actor.site
        ),
        correlation_id=provenance.correlation_id,
        causation_id=provenance.causation_id,
        source=SourceV1(service=SERVICE, client_id=provenance.client_id),
        **{field: _plain(getattr(event, field)) for field in fields},
    )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
