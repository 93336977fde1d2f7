"""The identity application: accounts, login, and re-authentication for signatures.

Passwords are hashed with argon2 here and never logged. A failed login or signing
is saved (and may lock the account) before the refusal is raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.identity import errors
from services.identity.domain import AccountPolicy, User, check_password, user_record_id
from shared.auth import Meaning, Principal, Role, SigningAssertion, new_session_id
from shared.eventstore import ServiceApplication
from shared.provenance import Actor, Command, Provenance


class IdentityApplication(ServiceApplication):
    """Commands of the identity authority."""

    name = "identity"
    value_types: ClassVar[tuple[type, ...]] = (Actor, Provenance)

    def __init__(self, env: dict[str, str] | None = None, policy: AccountPolicy | None = None):
        super().__init__(env=env)
        self.policy = policy or AccountPolicy()
        self.hasher = PasswordHasher()

    # --- administration --------------------------------------------------------------

    def create_user(
        self,
        user_id: str,
        printed_name: str,
        site: str,
        roles: frozenset[Role],
        password: str,
        command: Command,
    ) -> User:
        """Create an account; the id is unique for ever."""
        password_hash = self.hasher.hash(check_password(user_id, password))
        user = User.create(user_id, printed_name, site, roles, password_hash, command)
        try:
            self.save(user)
        except IntegrityError:
            raise errors.UserIdTaken(
                f"user id {user_id} is taken (ids are never reused)", user_id=user_id
            ) from None
        return user

    def has_users(self) -> bool:
        return bool(self.recorder.max_notification_id())

    def grant_role(self, user_id: str, role: Role, command: Command) -> User:
        return self._change(user_id, lambda user: user.grant_role(role, command))

    def revoke_role(self, user_id: str, role: Role, reason: str, command: Command) -> User:
        return self._change(user_id, lambda user: user.revoke_role(role, reason, command))

    def deactivate_user(self, user_id: str, reason: str, command: Command) -> User:
        return self._change(user_id, lambda user: user.deactivate(reason, command))

    def unlock_user(self, user_id: str, reason: str, command: Command) -> User:
        return self._change(user_id, lambda user: user.unlock(reason, command))

    def get_user(self, user_id: str) -> User:
        return self._load(user_record_id(user_id), user_id)

    # --- authentication --------------------------------------------------------------

    def log_in(self, user_id: str, password: str, command: Command) -> Principal:
        """Check id and password; open a login session, or record the failure."""
        user = self._authenticated(user_id, password, command, User.fail_login)
        command = _as_user(command, user)
        session_id = new_session_id()
        user.log_in(session_id, command, self.policy)
        self.save(user)
        return Principal(user.user_id, user.printed_name, user.site, user.roles, session_id)

    def change_password(
        self, user_id: str, current_password: str, new_password: str, command: Command
    ) -> User:
        """Change a password by proving the current one (allowed when it has aged)."""
        new_hash = self.hasher.hash(check_password(user_id, new_password))
        user = self._authenticated(user_id, current_password, command, User.fail_login)
        user.change_password(new_hash, _as_user(command, user))
        self.save(user)
        return user

    def authenticate_signing(
        self,
        principal: Principal,
        user_id_given: str | None,
        password: str,
        meaning: Meaning,
        purpose: str,
        command: Command,
    ) -> SigningAssertion:
        """Re-authenticate the caller for one signature (Part 11 §11.200(a)(1))."""
        user = self.get_user(principal.user_id)
        user.check_can_authenticate()
        if user_id_given is not None and user_id_given != principal.user_id:
            user.fail_signing(principal.session_id, command, self.policy)
            self.save(user)
            raise errors.InvalidCredentials("user id and password do not match")
        if not self._password_matches(user, password):
            user.fail_signing(principal.session_id, command, self.policy)
            self.save(user)
            raise errors.InvalidCredentials("user id and password do not match")
        assertion_id = str(uuid.uuid4())
        user.authenticate_signing(
            principal.session_id,
            user_id_given,
            meaning,
            purpose,
            assertion_id,
            command,
            self.policy,
        )
        self.save(user)
        return SigningAssertion(
            assertion_id,
            user.user_id,
            user.printed_name,
            principal.session_id,
            meaning,
            purpose,
            command.now,
        )

    def log_out(self, principal: Principal, command: Command) -> None:
        self._change(principal.user_id, lambda user: user.log_out(principal.session_id, command))

    def _authenticated(
        self,
        user_id: str,
        password: str,
        command: Command,
        record_failure: Callable[[User, Command, AccountPolicy], None],
    ) -> User:
        try:
            user = self.get_user(user_id)
        except errors.UserNotFound:
            raise errors.InvalidCredentials("user id and password do not match") from None
        command = _as_user(command, user)
        user.check_can_authenticate()
        if not self._password_matches(user, password):
            record_failure(user, command, self.policy)
            self.save(user)
            if user.locked:
                user.check_can_authenticate()  # raises AccountLocked: this attempt locked it
            raise errors.InvalidCredentials("user id and password do not match")
        return user

    def _password_matches(self, user: User, password: str) -> bool:
        try:
            return self.hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _change(self, user_id: str, decide: Callable[[User], None]) -> User:
        return self.saved_with_retry(
            lambda: self._load(user_record_id(user_id), user_id),
            decide,
            lambda: errors.Conflict(f"user {user_id} kept changing underneath this command"),
        )

    def _load(self, record_id: UUID, user_id: str) -> User:
        try:
            user: User = self.repository.get(record_id)
        except AggregateNotFoundError:
            raise errors.UserNotFound(user_id) from None
        return user


def _as_user(command: Command, user: User) -> Command:
    """A self-service command (login, password) acts as the account's own person."""
    actor = Actor(user.user_id, user.printed_name, "self", user.site)
    return replace(command, provenance=replace(command.provenance, actor=actor))
