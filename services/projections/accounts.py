"""The account review: who created, granted, revoked, deactivated, locked or unlocked which
account, when and why, and which account changes were refused; and who holds roles that
separation of duties forbids together (docs/auditing.md, "Account review").

Read from the ledger's identity events alone (pure: the caller reads the entries), so the
review is what the ledger holds, as tamper-evident as the rest of the trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.projections.recorded import Recorded
from shared.contracts import identity
from shared.contracts.security import AccessDeniedV1, AccessDeniedV2
from shared.kernel.permissions import SeparationOfDuties, table
from shared.kernel.provenance import Role

IDENTITY_SOURCE = "/trial-ledger/identity"
# The identity events that change an account's roles or status (logins and signings are
# in the trail: GET /trail?event_type=...).
ACCOUNT_CHANGES: tuple[str, ...] = tuple(
    contract.event_type
    for contract in (
        identity.UserCreatedV1,
        identity.RoleGrantedV1,
        identity.RoleRevokedV1,
        identity.UserDeactivatedV1,
        identity.AccountLockedV1,
        identity.AccountUnlockedV1,
        identity.PasswordChangedV1,
    )
)
# a refusal; v2 names the account the refused change was for
DENIED: tuple[str, ...] = (AccessDeniedV1.event_type, AccessDeniedV2.event_type)
# The identity commands that change accounts: their refusals belong to the review.
ADMINISTRATION: frozenset[str] = frozenset(
    rule.command
    for rule in table("identity").rules
    if rule.roles == frozenset({Role.ADMINISTRATOR}) and rule.command != "identity.read_users"
)
REVIEWED: tuple[str, ...] = (*ACCOUNT_CHANGES, *DENIED)


def review(
    entries: Iterable[tuple[int, Recorded]],
    duties: SeparationOfDuties,
    user_id: str | None = None,
) -> dict[str, Any]:
    """``entries`` (ledger position, identity event), in ledger order, as the review: every
    account change and refused account change (of ``user_id``'s account, or by them, when
    given), and every account that now holds a forbidden pair of roles."""
    changes: list[dict[str, Any]] = []
    roles: dict[str, set[str]] = {}
    active: dict[str, bool] = {}
    for position, event in entries:
        row = _row(position, event)
        if row is None:
            continue
        account = row["user_id"]
        if event.type == identity.UserCreatedV1.event_type:
            roles[account] = set(event.data["roles"])
            active[account] = True
        elif event.type == identity.RoleGrantedV1.event_type:
            roles.setdefault(account, set()).add(event.data["role"])
        elif event.type == identity.RoleRevokedV1.event_type:
            roles.setdefault(account, set()).discard(event.data["role"])
        elif event.type == identity.UserDeactivatedV1.event_type:
            active[account] = False
        if user_id is None or user_id in (account, row["actor"]["user_id"]):
            changes.append(row)
    return {
        "changes": changes,
        "incompatible_roles": [
            {
                "user_id": account,
                "roles": sorted(held),
                "active": active.get(account, True),
                "conflicts": [[a.value, b.value] for a, b in conflicts],
            }
            for account, held in sorted(roles.items())
            if (conflicts := duties.conflicts(_known(held)))
            and (user_id is None or user_id == account)
        ],
    }


def _row(position: int, event: Recorded) -> dict[str, Any] | None:
    data = event.data
    if event.source != IDENTITY_SOURCE:
        return None
    if event.type in DENIED and data.get("command") not in ADMINISTRATION:
        return None
    if event.type not in REVIEWED:
        return None
    actor = data.get("actor") or {}
    refused = event.type in DENIED
    change = {
        name: data[name]
        for name in ("roles", "role", "failed_attempts", "command", "reason_code", "target_user_id")
        if name in data
    }
    return {
        "position": position,
        "recorded_at": event.recordedtime.isoformat(),
        "event_type": event.type,
        "event_id": str(event.id),
        # the account changed; a refusal, the account it was for (AccessDenied.v2), or for
        # one recorded before v2 (which names no account), the refused administrator's
        "user_id": (data.get("target_user_id") or actor.get("user_id"))
        if refused
        else data.get("user_id"),
        "refused": refused,
        "change": change,
        "actor": {name: actor.get(name) for name in ("user_id", "printed_name", "role", "site")},
        "reason": data.get("reason"),
        "correlation_id": data.get("correlation_id"),
    }


def _known(held: set[str]) -> set[Role]:
    """The roles of ``held`` this version knows (a role retired since is not paired)."""
    known = {role.value for role in Role}
    return {Role(name) for name in held if name in known}
