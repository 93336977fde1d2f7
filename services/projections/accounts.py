"""The account review: who created, granted, revoked, deactivated, locked or unlocked which
account, when and why, and which account changes were refused; and who holds roles that
separation of duties forbids together (docs/auditing.md, "Account review").

Read from the ledger's identity events alone (pure: the caller reads the entries), so the
review is what the ledger holds, as tamper-evident as the rest of the trail. A review is of
one study, read from that study's ledger: its roles and sites are the grants IN that study
(``RoleGranted.v1``/``RoleRevoked.v1`` and the roles and site of ``UserCreated.v1`` are the
first study's; a ``.v2`` grant or revocation names its study, and counts in that study's
review alone). Accounts are created, deactivated and unlocked in the first study, so those
events are in its ledger: another study's review does not know whether an account is active
(``active``: None there; the first study's review says).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.projections.recorded import Recorded
from shared.contracts import identity
from shared.contracts.security import AccessDeniedV1, AccessDeniedV2
from shared.kernel.permissions import SeparationOfDuties, table
from shared.kernel.provenance import Role
from shared.study import DEFAULT_STUDY_ID

IDENTITY_SOURCE = "/trial-ledger/identity"
# The identity events that change an account's roles or status (logins and signings are
# in the trail: GET /trail?event_type=...).
ACCOUNT_CHANGES: tuple[str, ...] = tuple(
    contract.event_type
    for contract in (
        identity.UserCreatedV1,
        identity.RoleGrantedV1,
        identity.RoleRevokedV1,
        identity.RoleGrantedV2,
        identity.RoleRevokedV2,
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
    study_id: str | None = None,
) -> dict[str, Any]:
    """``entries`` (ledger position, identity event), in ledger order, as the review of
    ``study_id`` (None: the first study): every account change and refused account change
    (of ``user_id``'s account, or by them, when given), the accounts' roles and sites in the
    study, and every account that now holds a forbidden pair of roles there."""
    study = study_id or DEFAULT_STUDY_ID
    first = study == DEFAULT_STUDY_ID
    changes: list[dict[str, Any]] = []
    roles: dict[str, set[str]] = {}
    sites: dict[str, str | None] = {}
    # an account's status is the first study's ledger's (where accounts are made and ended)
    active: dict[str, bool | None] = {}
    for position, event in entries:
        row = _row(position, event, study)
        if row is None:
            continue
        account = row["user_id"]
        data = event.data
        if event.type == identity.UserCreatedV1.event_type and first:
            roles[account] = set(data["roles"])
            sites[account] = data.get("site")
            active[account] = True
        elif event.type == identity.RoleGrantedV1.event_type and first:
            roles.setdefault(account, set()).add(data["role"])
        elif event.type == identity.RoleRevokedV1.event_type and first:
            roles.setdefault(account, set()).discard(data["role"])
        elif event.type == identity.RoleGrantedV2.event_type:
            roles.setdefault(account, set()).add(data["role"])
            sites[account] = data["site"]
        elif event.type == identity.RoleRevokedV2.event_type:
            roles.setdefault(account, set()).discard(data["role"])
        elif event.type == identity.UserDeactivatedV1.event_type and first:
            active[account] = False
        if user_id is None or user_id in (account, row["actor"]["user_id"]):
            changes.append(row)

    def status(account: str) -> bool | None:
        return active.get(account, True) if first else None

    mine = sorted((account, held) for account, held in roles.items() if user_id in (None, account))
    return {
        "study_id": study,
        "changes": changes,
        "accounts": [
            {
                "user_id": account,
                "site": sites.get(account),
                "roles": sorted(held),
                "active": status(account),
            }
            for account, held in mine
            if held
        ],
        "incompatible_roles": [
            {
                "user_id": account,
                "roles": sorted(held),
                "active": status(account),
                "conflicts": [[a.value, b.value] for a, b in conflicts],
            }
            for account, held in mine
            if (conflicts := duties.conflicts(_known(held)))
        ],
    }


GRANTS_V1 = (identity.RoleGrantedV1.event_type, identity.RoleRevokedV1.event_type)
GRANTS_V2 = (identity.RoleGrantedV2.event_type, identity.RoleRevokedV2.event_type)


def _row(position: int, event: Recorded, study: str) -> dict[str, Any] | None:
    data = event.data
    if event.source != IDENTITY_SOURCE:
        return None
    # a grant or revocation of another study than the review's is not this review's
    if event.type in GRANTS_V2 and data.get("study_id") != study:
        return None
    if event.type in GRANTS_V1 and study != DEFAULT_STUDY_ID:
        return None
    if event.type in DENIED and data.get("command") not in ADMINISTRATION:
        return None
    if event.type not in REVIEWED:
        return None
    actor = data.get("actor") or {}
    refused = event.type in DENIED
    change = {
        name: data[name]
        for name in (
            "roles",
            "role",
            "study_id",
            "site",
            "failed_attempts",
            "command",
            "reason_code",
            "target_user_id",
        )
        # a grant's study and site: a v2 grant's (a first-study row is as before studies)
        if name in data and (name not in ("study_id", "site") or event.type in GRANTS_V2)
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
