"""The identity application: accounts, login, and re-authentication for signatures.

Passwords are hashed with argon2id (``passwords``) here and never logged. A failed login
or signing is saved (and may lock the account) before the refusal is raised.

Parallel commands on one account: this process saves one at a time per account (its
lock), each decided on the account as it is then; a save made stale by another identity
process is decided again on the reloaded account. So parallel wrong passwords are each
counted and lock the account as a sequential run would (docs/security.md).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from weakref import WeakValueDictionary

from eventsourcing.utils import get_topic

from services.identity import errors
from services.identity.domain import (
    AccountPolicy,
    User,
    check_password,
    user_record_id,
)
from services.identity.passwords import Passwords
from shared.adapters.eventstore import ServiceApplication
from shared.kernel.provenance import Actor, Attribution
from shared.study import acting_study
from shared.web.auth import Meaning, Principal, Role, SigningAssertion, new_session_id

log = logging.getLogger(__name__)


class IdentityApplication(ServiceApplication):
    """Commands of the identity authority."""

    name = "identity"
    records = (User,)
    # Only another identity process can make a save of an account stale (this one saves
    # one command per account at a time); each such save is decided again, this often.
    save_attempts = 10

    def __init__(self, env: dict[str, str] | None = None, policy: AccountPolicy | None = None):
        super().__init__(env=env)
        self.policy = policy or AccountPolicy()
        self.passwords = Passwords()
        self._accounts = AccountLocks()

    # --- administration --------------------------------------------------------------

    def create_user(
        self,
        user_id: str,
        printed_name: str,
        site: str,
        roles: frozenset[Role],
        password: str,
        attribution: Attribution,
    ) -> User:
        """Create an account; the id is unique for ever."""
        password_hash = self.passwords.hash(check_password(user_id, password))
        return self.save_new(
            User.create(
                user_id, printed_name, site, roles, password_hash, attribution, self.policy
            ),
            lambda: errors.UserIdTaken(
                f"user id {user_id} is taken (ids are never reused)", user_id=user_id
            ),
        )

    def has_users(self) -> bool:
        return bool(self.recorder.max_notification_id())

    def administrators_in(self, study_id: str) -> list[str]:
        """The active accounts that hold the administrator role in ``study_id`` (a study
        after the first), from the grants stored there (read whole: a command-line check)."""
        topic = get_topic(User.StudyRoleGranted)
        granted: set[str] = set()
        start: int | None = 1
        while start is not None:
            page = self.recorder.select_notifications(start, 500, topics=[topic])
            for notification in page:
                grant: Any = self.mapper.to_domain_event(notification)
                if grant.study_id == study_id and grant.role == Role.ADMINISTRATOR.value:
                    granted.add(grant.user_id)
            start = page[-1].id + 1 if len(page) == 500 else None
        return sorted(
            user_id
            for user_id in granted
            if (user := self.get_user(user_id)).active
            and Role.ADMINISTRATOR in user.roles_in(study_id)
        )

    def grant_role(
        self,
        user_id: str,
        role: Role,
        attribution: Attribution,
        reason: str = "",
        site: str | None = None,
    ) -> User:
        """Grant ``role`` in the study ``attribution`` acts in (its caller's token's)."""
        return self._saved(
            user_id, lambda user: user.grant_role(role, attribution, self.policy, reason, site)
        )

    def revoke_role(self, user_id: str, role: Role, reason: str, attribution: Attribution) -> User:
        return self._saved(user_id, lambda user: user.revoke_role(role, reason, attribution))

    def deactivate_user(self, user_id: str, reason: str, attribution: Attribution) -> User:
        return self._saved(user_id, lambda user: user.deactivate(reason, attribution))

    def unlock_user(self, user_id: str, reason: str, attribution: Attribution) -> User:
        return self._saved(user_id, lambda user: user.unlock(reason, attribution))

    def get_user(self, user_id: str) -> User:
        user: User = self.load(user_record_id(user_id), lambda: errors.UserNotFound(user_id))
        return user

    # --- authentication --------------------------------------------------------------

    def log_in(self, user_id: str, password: str, attribution: Attribution) -> Principal:
        """Check id and password; open a login session for the study ``attribution`` names
        (none: the first study), with the site and roles the account holds there, or record
        the failure. A right password of an account with no grant in the study opens no
        session: ``StudyNotGranted`` (after the password check, so that it tells nothing
        more of an account than a wrong password does)."""
        session_id = new_session_id()
        user = self._attempt(
            user_id,
            password,
            succeed=lambda user: user.log_in(session_id, _as_user(attribution, user), self.policy),
            fail=lambda user: user.fail_login(_as_user(attribution, user), self.policy),
        )
        study_id = attribution.provenance.study_id  # None: the first study's token, as before
        grant = user.check_granted(acting_study(attribution.provenance))
        return Principal(
            user.user_id, user.printed_name, grant.site, grant.roles, session_id,
            study_id=study_id,
        )  # fmt: skip

    def change_password(
        self, user_id: str, current_password: str, new_password: str, attribution: Attribution
    ) -> User:
        """Change a password by proving the current one (allowed when it has aged)."""
        new_hash = self.passwords.hash(check_password(user_id, new_password))
        return self._attempt(
            user_id,
            current_password,
            succeed=lambda user: user.change_password(new_hash, _as_user(attribution, user)),
            fail=lambda user: user.fail_login(_as_user(attribution, user), self.policy),
        )

    def authenticate_signing(
        self,
        principal: Principal,
        user_id_given: str | None,
        password: str,
        meaning: Meaning,
        purpose: str,
        attribution: Attribution,
    ) -> SigningAssertion:
        """Re-authenticate the caller for one signature (Part 11 §11.200(a)(1))."""
        assertion_id = str(uuid.uuid4())
        session_id = principal.session_id
        user = self._attempt(
            principal.user_id,
            password,
            succeed=lambda user: user.authenticate_signing(
                session_id, user_id_given, meaning, purpose, assertion_id, attribution, self.policy
            ),
            fail=lambda user: user.fail_signing(session_id, attribution, self.policy),
            user_id_matches=user_id_given in (None, principal.user_id),
        )
        return SigningAssertion(
            assertion_id, user.user_id, user.printed_name, session_id, meaning, purpose,
            attribution.now, principal.study_id,
        )  # fmt: skip

    def log_out(self, principal: Principal, attribution: Attribution) -> None:
        self._saved(principal.user_id, lambda user: user.log_out(principal.session_id, attribution))

    def _attempt(
        self,
        user_id: str,
        password: str,
        succeed: Callable[[User], None],
        fail: Callable[[User], None],
        user_id_matches: bool = True,
    ) -> User:
        """Check a password, then record ``succeed`` or ``fail`` (which counts towards
        lockout), decided on the account as it is when the outcome is saved.

        argon2 runs before the account's lock is taken (and again under it only if the
        password changed meanwhile). A refusal that depends on the password is raised only
        once the failure is recorded; an attempt that cannot be recorded answers 409 whatever
        the password was, so that going parallel buys no uncounted guess.
        """
        try:
            user = self.get_user(user_id)
        except errors.UserNotFound:
            # as long as a wrong password takes, and the same answer (docs/security.md)
            self.passwords.matches(None, password)
            raise _refused() from None
        if not user.can_authenticate():
            # deactivated or locked: the same answer as a wrong password, after as long a
            # check (of its own hash, whose answer is not used: a locked account gives no
            # oracle to go on guessing), and nothing recorded that depends on the password
            self.passwords.matches(user.password_hash, password)
            log.info(
                "authentication refused: account may not log in user=%s active=%s locked=%s",
                user.user_id,
                user.active,
                user.locked,
            )
            raise _refused()
        verdicts: dict[str, bool] = {}  # password hash -> whether the credentials match it

        def credentials_match(account: User) -> bool:
            if account.password_hash not in verdicts:
                # checked also when the id given is not the caller's: as long an answer
                verdicts[account.password_hash] = (
                    self.passwords.matches(account.password_hash, password) and user_id_matches
                )
            return verdicts[account.password_hash]

        credentials_match(user)  # the slow part, before the account's lock
        failed = False

        def decide(latest: User) -> None:
            nonlocal failed
            latest.check_can_authenticate()  # a parallel attempt may have locked it since
            failed = not credentials_match(latest)
            if failed:
                fail(latest)
            else:
                succeed(latest)

        try:
            user = self._saved(user_id, decide)
        except (errors.AccountLocked, errors.UserInactive):
            raise _refused() from None  # locked or deactivated meanwhile, by another attempt
        if failed:
            raise _refused()  # this attempt may have locked the account: the same answer
        return user

    def _saved(self, user_id: str, decide: Callable[[User], None]) -> User:
        """Load, decide and save one account, under its lock in this process; a save made
        stale by another identity process is decided again on the reloaded account."""
        with self._accounts.lock(user_id):
            return self.saved_with_retry(
                lambda: self.get_user(user_id),
                decide,
                lambda: errors.Conflict(
                    f"user {user_id} kept changing underneath this command; retry",
                    user_id=user_id,
                ),
                attempts=self.save_attempts,
            )


class AccountLocks:
    """One lock per account, so that this process saves one command per account at a time.

    A lock lives only while someone holds or waits for it, so the table stays small.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: WeakValueDictionary[str, threading.Lock] = WeakValueDictionary()

    def lock(self, user_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(user_id)
            if lock is None:
                lock = self._locks[user_id] = threading.Lock()
            return lock


def _refused() -> errors.InvalidCredentials:
    """The one answer to a refused authentication: unknown id, wrong password, deactivated
    or locked account (docs/security.md, "What a refused login says")."""
    return errors.InvalidCredentials(REFUSED)


REFUSED = (
    "user id and password do not match, or this account may not log in now; "
    "if your password is right, ask an administrator"
)


def _as_user(attribution: Attribution, user: User) -> Attribution:
    """A self-service command (login, password) acts as the account's own person, at their
    site in the study it names (the first study's, if they hold no grant there)."""
    grant = user.grant_in(acting_study(attribution.provenance))
    actor = Actor(
        user.user_id, user.printed_name, "self", user.site if grant is None else grant.site
    )
    return replace(attribution, provenance=replace(attribution.provenance, actor=actor))
