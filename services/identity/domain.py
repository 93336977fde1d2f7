"""User accounts: roles, deactivation, lockout, password age, and signing sessions.

Decide, then record. Passwords are checked by the application (argon2); the account
only learns whether the check passed, and keeps the hash it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.identity import errors
from shared.kernel.permissions import SeparationOfDuties
from shared.kernel.provenance import Attribution, Meaning, Provenance, Role
from shared.kernel.records import NamedRecord

USER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:trial-ledger:user")
_USER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True)
class AccountPolicy:
    """Configurable account protection (Part 11 §11.300) and separation of duties."""

    max_failed_attempts: int = 5
    password_max_age: timedelta | None = timedelta(days=90)
    signing_idle_timeout: timedelta = timedelta(minutes=15)
    duties: SeparationOfDuties = field(default_factory=SeparationOfDuties.default)


@dataclass(frozen=True)
class LoginSession:
    session_id: str
    started_at: datetime
    last_signed_at: datetime | None = None
    ended: bool = False


def user_record_id(user_id: str) -> UUID:
    return uuid5(USER_NAMESPACE, user_id)


def check_user_id(user_id: str) -> str:
    if not _USER_ID.fullmatch(user_id):
        raise errors.InvalidUserId(
            f"user id {user_id!r} must be 3-64 characters of a-z, 0-9, '.', '_', '-'",
            user_id=user_id,
        )
    return user_id


def check_compatible(
    user_id: str, roles: frozenset[Role], policy: AccountPolicy, adding: frozenset[Role]
) -> None:
    """Refuse roles ``adding`` that would make ``user_id`` hold a forbidden pair."""
    conflicts = policy.duties.conflicts(roles | adding, adding)
    if conflicts:
        pairs = ", ".join(f"{a} + {b}" for a, b in conflicts)
        raise errors.IncompatibleRoles(
            f"{user_id} may not hold {pairs}: separation of duties (TL_INCOMPATIBLE_ROLES)",
            user_id=user_id,
            conflicts=[[a.value, b.value] for a, b in conflicts],
        )


def check_password(user_id: str, password: str) -> str:
    """The password policy; the application hashes what passes."""
    if len(password) < MIN_PASSWORD_LENGTH or password.lower() == user_id.lower():
        raise errors.WeakPassword(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters and must differ "
            "from the user id"
        )
    return password


class User(NamedRecord):
    """One person's account. Its id is never reused, also after deactivation."""

    class Event(Aggregate.Event):
        """Every account event names its user, so that it can be published alone."""

        user_id: str

    named_by = "user_id"
    user_id: str

    @staticmethod
    def create_id(user_id: str, **_: Any) -> UUID:
        return user_record_id(user_id)

    @classmethod
    def create(
        cls,
        user_id: str,
        printed_name: str,
        site: str,
        roles: frozenset[Role],
        password_hash: str,
        attribution: Attribution,
        policy: AccountPolicy,
    ) -> User:
        """Create an account with its first roles and password (already hashed); its roles
        must be compatible with one another."""
        check_compatible(user_id, frozenset(), policy, frozenset(roles))
        return cls(
            user_id=check_user_id(user_id),
            printed_name=printed_name,
            site=site,
            roles=tuple(sorted(roles)),
            password_hash=password_hash,
            password_set_at=attribution.now,
            provenance=attribution.provenance,
        )

    @event("UserCreated")
    def __init__(
        self,
        user_id: str,
        printed_name: str,
        site: str,
        roles: tuple[str, ...],
        password_hash: str,
        password_set_at: datetime,
        provenance: Provenance,
    ) -> None:
        self.user_id = user_id
        self.printed_name = printed_name
        self.site = site
        self.roles = frozenset(Role(role) for role in roles)
        self.password_hash = password_hash
        self.password_set_at = password_set_at
        self.active = True
        self.locked = False
        self.failed_attempts = 0
        self.sessions: dict[str, LoginSession] = {}

    # --- administration --------------------------------------------------------------

    def grant_role(
        self, role: Role, attribution: Attribution, policy: AccountPolicy, reason: str = ""
    ) -> None:
        """Grant ``role`` (for ``reason``, recorded when given), unless the grant is the
        administrator's own or would pair it with a role it may not be held with (a pair
        held from before this rule does not stop an unrelated grant: docs/security.md)."""
        self._check_not_own(attribution)
        self._check_active()
        if role in self.roles:
            raise errors.RoleAlreadyGranted(f"{self.user_id} already has role {role}", role=role)
        check_compatible(self.user_id, self.roles, policy, frozenset({role}))
        self._role_granted(role.value, attribution.provenance, reason.strip())

    # ``reason`` came later: a grant stored before it has none, and replays with ""
    @event("RoleGranted")
    def _role_granted(self, role: str, provenance: Provenance, reason: str = "") -> None:
        self.roles = self.roles | {Role(role)}

    def revoke_role(self, role: Role, reason: str, attribution: Attribution) -> None:
        self._check_not_own(attribution)
        self._check_active()
        if role not in self.roles:
            raise errors.RoleNotGranted(f"{self.user_id} does not have role {role}", role=role)
        self._role_revoked(role.value, _reason(reason), attribution.provenance)

    @event("RoleRevoked")
    def _role_revoked(self, role: str, reason: str, provenance: Provenance) -> None:
        self.roles = self.roles - {Role(role)}

    def deactivate(self, reason: str, attribution: Attribution) -> None:
        """Deactivate for good; the id stays taken."""
        self._check_not_own(attribution)
        self._check_active()
        self._deactivated(_reason(reason), attribution.provenance)

    @event("UserDeactivated")
    def _deactivated(self, reason: str, provenance: Provenance) -> None:
        self.active = False

    def unlock(self, reason: str, attribution: Attribution) -> None:
        self._check_not_own(attribution)
        self._check_active()
        if not self.locked:
            raise errors.NotLocked(f"{self.user_id} is not locked")
        self._unlocked(_reason(reason), attribution.provenance)

    @event("AccountUnlocked")
    def _unlocked(self, reason: str, provenance: Provenance) -> None:
        self.locked = False
        self.failed_attempts = 0

    # --- authentication --------------------------------------------------------------

    def conflicts(self, policy: AccountPolicy) -> list[tuple[Role, Role]]:
        """The forbidden pairs the account holds (only accounts made before the rule, or
        before a change of ``TL_INCOMPATIBLE_ROLES``, can hold any)."""
        return policy.duties.conflicts(self.roles)

    def can_authenticate(self) -> bool:
        return self.active and not self.locked

    def check_can_authenticate(self) -> None:
        """Refuse before any password is checked: deactivated or locked accounts."""
        self._check_active()
        if self.locked:
            raise errors.AccountLocked(
                f"account {self.user_id} is locked after {self.failed_attempts} failed "
                "attempts; an administrator must unlock it",
                user_id=self.user_id,
            )

    def fail_login(self, attribution: Attribution, policy: AccountPolicy) -> None:
        """Record a wrong password at login; lock the account at the policy's limit."""
        self._login_failed(self.failed_attempts + 1, attribution.now, attribution.provenance)
        self._lock_if_over(policy, attribution)

    @event("LoginFailed")
    def _login_failed(self, attempt: int, at: datetime, provenance: Provenance) -> None:
        self.failed_attempts = attempt

    def log_in(self, session_id: str, attribution: Attribution, policy: AccountPolicy) -> None:
        """Open a login session; an aged password must be changed first."""
        self.check_can_authenticate()
        if self.password_expired(attribution.now, policy):
            raise errors.PasswordExpired(
                f"the password of {self.user_id} is older than the maximum age; change it",
                user_id=self.user_id,
            )
        self._logged_in(session_id, attribution.now, attribution.provenance)

    @event("LoginSucceeded")
    def _logged_in(self, session_id: str, at: datetime, provenance: Provenance) -> None:
        self.failed_attempts = 0
        self.sessions[session_id] = LoginSession(session_id, at)

    def change_password(self, password_hash: str, attribution: Attribution) -> None:
        """Replace the password (the caller proved the old one)."""
        self.check_can_authenticate()
        self._password_changed(password_hash, attribution.now, attribution.provenance)

    @event("PasswordChanged")
    def _password_changed(self, password_hash: str, at: datetime, provenance: Provenance) -> None:
        self.password_hash = password_hash
        self.password_set_at = at
        self.failed_attempts = 0

    def password_expired(self, now: datetime, policy: AccountPolicy) -> bool:
        age = policy.password_max_age
        return age is not None and now - self.password_set_at > age

    # --- signing ---------------------------------------------------------------------

    def signing_needs_user_id(self, session_id: str, now: datetime, policy: AccountPolicy) -> bool:
        """The first signing of a session, or one after the idle timeout, needs id + password."""
        session = self._open_session(session_id)
        last = session.last_signed_at
        return last is None or now - last > policy.signing_idle_timeout

    def fail_signing(
        self, session_id: str, attribution: Attribution, policy: AccountPolicy
    ) -> None:
        """Record a failed re-authentication for a signature; it counts towards lockout."""
        self._signing_failed(
            session_id, self.failed_attempts + 1, attribution.now, attribution.provenance
        )
        self._lock_if_over(policy, attribution)

    @event("SigningFailed")
    def _signing_failed(
        self, session_id: str, attempt: int, at: datetime, provenance: Provenance
    ) -> None:
        self.failed_attempts = attempt

    def authenticate_signing(
        self,
        session_id: str,
        user_id_given: str | None,
        meaning: Meaning,
        purpose: str,
        assertion_id: str,
        attribution: Attribution,
        policy: AccountPolicy,
    ) -> None:
        """Record a successful re-authentication for one signature."""
        self.check_can_authenticate()
        if (
            self.signing_needs_user_id(session_id, attribution.now, policy)
            and user_id_given is None
        ):
            raise errors.UserIdRequired(
                "the first signing of a session, or one after the idle timeout, needs the "
                "user id and the password",
                idle_timeout_seconds=int(policy.signing_idle_timeout.total_seconds()),
            )
        self._signing_authenticated(
            session_id,
            meaning.value,
            purpose,
            assertion_id,
            attribution.now,
            attribution.provenance,
        )

    @event("SigningAuthenticated")
    def _signing_authenticated(
        self,
        session_id: str,
        meaning: str,
        purpose: str,
        assertion_id: str,
        at: datetime,
        provenance: Provenance,
    ) -> None:
        self.failed_attempts = 0
        self.sessions[session_id] = replace(self.sessions[session_id], last_signed_at=at)

    def log_out(self, session_id: str, attribution: Attribution) -> None:
        self._open_session(session_id)
        self._logged_out(session_id, attribution.provenance)

    @event("LoggedOut")
    def _logged_out(self, session_id: str, provenance: Provenance) -> None:
        self.sessions[session_id] = replace(self.sessions[session_id], ended=True)

    # --- guards ----------------------------------------------------------------------

    def _lock_if_over(self, policy: AccountPolicy, attribution: Attribution) -> None:
        if not self.locked and self.failed_attempts >= policy.max_failed_attempts:
            self._locked(self.failed_attempts, attribution.now, attribution.provenance)

    @event("AccountLocked")
    def _locked(self, failed_attempts: int, at: datetime, provenance: Provenance) -> None:
        self.locked = True

    def _open_session(self, session_id: str) -> LoginSession:
        session = self.sessions.get(session_id)
        if session is None or session.ended:
            raise errors.SessionRequired(
                "signing needs an open login session; log in again", user_id=self.user_id
            )
        return session

    def _check_not_own(self, attribution: Attribution) -> None:
        if attribution.provenance.actor.user_id == self.user_id:
            raise errors.OwnAccount(
                f"{self.user_id} may not change their own roles or status; another "
                "administrator must",
                user_id=self.user_id,
            )

    def _check_active(self) -> None:
        if not self.active:
            raise errors.UserInactive(f"user {self.user_id} is deactivated", user_id=self.user_id)


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise errors.ReasonRequired("this change needs a reason", field="reason")
    return reason
