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
from shared.study import DEFAULT_STUDY_ID, acting_study

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


@dataclass(frozen=True)
class StudyGrant:
    """What an account may do in one study: its site there and its roles there."""

    site: str
    roles: frozenset[Role]


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
        """Create an account with its password (already hashed), and its site and first
        roles in the deployment's first study, which must be compatible with one another."""
        check_account_administrator(user_id, attribution)
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
        # the grants in the studies after the first: the account's ``site`` and ``roles``
        # (as created, granted and revoked by the events stored before studies were named)
        # are its grant in the deployment's first study
        self.study_grants: dict[str, StudyGrant] = {}

    # --- grants per study ------------------------------------------------------------

    def grant_in(self, study_id: str) -> StudyGrant | None:
        """The account's grant in ``study_id``, or None: in the first study always its
        ``site`` and ``roles`` (an account may log in there with no role, as before studies
        were named); in another, its site and roles there, None while it holds none."""
        if study_id == DEFAULT_STUDY_ID:
            return StudyGrant(self.site, self.roles)
        grant = self.study_grants.get(study_id)
        return grant if grant is not None and grant.roles else None

    def roles_in(self, study_id: str) -> frozenset[Role]:
        grant = self.grant_in(study_id)
        return frozenset() if grant is None else grant.roles

    def check_granted(self, study_id: str) -> StudyGrant:
        """The account's grant in ``study_id``; ``StudyNotGranted`` if it holds none."""
        grant = self.grant_in(study_id)
        if grant is None:
            raise errors.StudyNotGranted(
                f"{self.user_id} holds no role in study {study_id}; an administrator of "
                "that study grants roles there",
                user_id=self.user_id,
                study_id=study_id,
            )
        return grant

    # --- administration --------------------------------------------------------------

    def grant_role(
        self,
        role: Role,
        attribution: Attribution,
        policy: AccountPolicy,
        reason: str = "",
        site: str | None = None,
    ) -> None:
        """Grant ``role`` (for ``reason``, recorded when given) in the study the
        administrator acts in (``acting_study``), at ``site`` (the account's site in that study:
        needed for its first role there, and never another than its roles there have),
        unless the grant is the administrator's own or would pair it with a role it may not
        be held with in that study (a pair held from before this rule does not stop an
        unrelated grant: docs/security.md)."""
        self._check_not_own(attribution)
        self._check_active()
        study_id = acting_study(attribution.provenance)
        held = self.grant_in(study_id)
        site = site.strip() if site is not None else None
        if held is not None and site and site != held.site:
            raise errors.SiteDiffers(
                f"{self.user_id} is at site {held.site} in study {study_id}; revoke their "
                "roles there before granting at another site",
                user_id=self.user_id,
                study_id=study_id,
                site=held.site,
            )
        roles = frozenset() if held is None else held.roles
        if role in roles:
            raise errors.RoleAlreadyGranted(
                f"{self.user_id} already has role {role} in study {study_id}",
                role=role,
                study_id=study_id,
            )
        check_compatible(self.user_id, roles, policy, frozenset({role}))
        if study_id == DEFAULT_STUDY_ID:  # the first study's grant: as before studies
            self._role_granted(role.value, attribution.provenance, reason.strip())
            return
        at = held.site if held is not None else site
        if not at:
            raise errors.SiteRequired(
                f"the first role of {self.user_id} in study {study_id} names their site there",
                field="site",
                study_id=study_id,
            )
        self._study_role_granted(study_id, at, role.value, attribution.provenance, reason.strip())

    # ``reason`` came later: a grant stored before it has none, and replays with ""
    @event("RoleGranted")
    def _role_granted(self, role: str, provenance: Provenance, reason: str = "") -> None:
        self.roles = self.roles | {Role(role)}

    # a grant in a study after the first (``RoleGranted`` is the first study's)
    @event("StudyRoleGranted")
    def _study_role_granted(
        self, study_id: str, site: str, role: str, provenance: Provenance, reason: str
    ) -> None:
        held = self.study_grants.get(study_id)
        roles = frozenset() if held is None else held.roles
        self.study_grants[study_id] = StudyGrant(site, roles | {Role(role)})

    def revoke_role(self, role: Role, reason: str, attribution: Attribution) -> None:
        """Revoke ``role`` in the study the administrator acts in (``acting_study``)."""
        self._check_not_own(attribution)
        self._check_active()
        study_id = acting_study(attribution.provenance)
        if role not in self.roles_in(study_id):
            raise errors.RoleNotGranted(
                f"{self.user_id} does not have role {role} in study {study_id}",
                role=role,
                study_id=study_id,
            )
        if study_id == DEFAULT_STUDY_ID:
            self._role_revoked(role.value, _reason(reason), attribution.provenance)
        else:
            self._study_role_revoked(study_id, role.value, _reason(reason), attribution.provenance)

    @event("RoleRevoked")
    def _role_revoked(self, role: str, reason: str, provenance: Provenance) -> None:
        self.roles = self.roles - {Role(role)}

    # a revocation in a study after the first (``RoleRevoked`` is the first study's); the
    # last role revoked ends the grant there, and its site with it
    @event("StudyRoleRevoked")
    def _study_role_revoked(
        self, study_id: str, role: str, reason: str, provenance: Provenance
    ) -> None:
        held = self.study_grants[study_id]
        roles = held.roles - {Role(role)}
        if roles:
            self.study_grants[study_id] = StudyGrant(held.site, roles)
        else:
            del self.study_grants[study_id]

    def deactivate(self, reason: str, attribution: Attribution) -> None:
        """Deactivate for good, in every study; the id stays taken."""
        check_account_administrator(self.user_id, attribution)
        self._check_not_own(attribution)
        self._check_active()
        self._deactivated(_reason(reason), attribution.provenance)

    @event("UserDeactivated")
    def _deactivated(self, reason: str, provenance: Provenance) -> None:
        self.active = False

    def unlock(self, reason: str, attribution: Attribution) -> None:
        check_account_administrator(self.user_id, attribution)
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

    def conflicts(
        self, policy: AccountPolicy, study_id: str = DEFAULT_STUDY_ID
    ) -> list[tuple[Role, Role]]:
        """The forbidden pairs the account holds in ``study_id`` (only accounts made before
        the rule, or before a change of ``TL_INCOMPATIBLE_ROLES``, can hold any)."""
        return policy.duties.conflicts(self.roles_in(study_id))

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
        """Open a login session for the study the login names (``acting_study``), where the
        account must hold a grant; an aged password must be changed first."""
        self.check_can_authenticate()
        if self.password_expired(attribution.now, policy):
            raise errors.PasswordExpired(
                f"the password of {self.user_id} is older than the maximum age; change it",
                user_id=self.user_id,
            )
        self.check_granted(acting_study(attribution.provenance))
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


def check_account_administrator(user_id: str, attribution: Attribution) -> None:
    """Creating, deactivating and unlocking an account change it in every study: only an
    administrator acting in the deployment's first study does (docs/security.md)."""
    study_id = acting_study(attribution.provenance)
    if study_id != DEFAULT_STUDY_ID:
        raise errors.AccountAdministrationRefused(
            f"accounts are created, deactivated and unlocked by an administrator of the "
            f"deployment's first study ({DEFAULT_STUDY_ID}), not of {study_id}: they change "
            "the account in every study",
            user_id=user_id,
            study_id=study_id,
            first_study_id=DEFAULT_STUDY_ID,
        )


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise errors.ReasonRequired("this change needs a reason", field="reason")
    return reason
