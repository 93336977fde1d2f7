"""Published events of the identity service (topic ``trialledger.identity.events``).

Account and permission changes, logins, lockouts and signing re-authentications.
Password hashes are never published. ``subject_id`` is null: these are not about a
trial subject; ``user_id`` names the account. A role is granted and revoked per study: the
``.v1`` grants and revocations (and the roles and site of ``UserCreated.v1``) are the
account's in the deployment's first study, the ``.v2`` ones name their study.
"""

from __future__ import annotations

from pydantic import Field

from shared.contracts.security import AccessDeniedV1, AccessDeniedV2
from shared.kernel.envelope import EventData, ReasonGiven, contract_registry

RECORD_TYPE = "User"


class AccountEvent(EventData):
    user_id: str


class SessionEvent(AccountEvent):
    """An event within one login session of the account."""

    session_id: str


class UserCreatedV1(AccountEvent):
    event_type = "UserCreated.v1"
    printed_name: str
    site: str
    roles: list[str]


class RoleGrantedV1(AccountEvent):
    event_type = "RoleGranted.v1"
    role: str


class RoleRevokedV1(ReasonGiven, AccountEvent):
    event_type = "RoleRevoked.v1"
    role: str


class RoleGrantedV2(AccountEvent):
    """A role granted in one study after the deployment's first (``RoleGranted.v1`` is a
    grant in the first study, at the site the account was created with)."""

    event_type = "RoleGranted.v2"
    study_id: str = Field(description="the study the role is granted in")
    site: str = Field(description="the account's site in that study")
    role: str


class RoleRevokedV2(ReasonGiven, AccountEvent):
    """A role revoked in one study after the deployment's first (``RoleRevoked.v1`` is a
    revocation in the first study): every access token of the account for that study
    that carries the role is withdrawn."""

    event_type = "RoleRevoked.v2"
    study_id: str = Field(description="the study the role is revoked in")
    role: str


class UserDeactivatedV1(ReasonGiven, AccountEvent):
    event_type = "UserDeactivated.v1"


class AccountUnlockedV1(ReasonGiven, AccountEvent):
    event_type = "AccountUnlocked.v1"


class PasswordChangedV1(AccountEvent):
    event_type = "PasswordChanged.v1"


class LoginSucceededV1(SessionEvent):
    event_type = "LoginSucceeded.v1"


class LoginFailedV1(AccountEvent):
    event_type = "LoginFailed.v1"
    attempt: int = Field(description="consecutive failed attempts, this one included")


class AccountLockedV1(AccountEvent):
    event_type = "AccountLocked.v1"
    failed_attempts: int


class SigningAuthenticatedV1(SessionEvent):
    event_type = "SigningAuthenticated.v1"
    meaning: str
    purpose: str
    assertion_id: str


class SigningFailedV1(SessionEvent):
    event_type = "SigningFailed.v1"
    attempt: int


class LoggedOutV1(SessionEvent):
    event_type = "LoggedOut.v1"


IDENTITY_CONTRACTS = contract_registry(
    UserCreatedV1,
    RoleGrantedV1,
    RoleRevokedV1,
    RoleGrantedV2,
    RoleRevokedV2,
    UserDeactivatedV1,
    AccountUnlockedV1,
    PasswordChangedV1,
    LoginSucceededV1,
    LoginFailedV1,
    AccountLockedV1,
    SigningAuthenticatedV1,
    SigningFailedV1,
    LoggedOutV1,
    AccessDeniedV1,
    AccessDeniedV2,
)
