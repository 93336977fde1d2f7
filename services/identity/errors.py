"""The identity service's refusals, each in its family (``shared.kernel.errors``);
``code`` is stable for clients."""

from __future__ import annotations

from shared.kernel.errors import (
    CredentialsRefused,
    InvalidValue,
    Locked,
    NotFound,
    NotPermitted,
    OutOfSequence,
    Overloaded,
    Throttled,
)


class UserNotFound(NotFound):
    """A command names a user id that was never created."""

    code = "user_not_found"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id} does not exist", user_id=user_id)


class InvalidCredentials(CredentialsRefused):
    """User id and password do not match, or the account may not log in (deactivated or
    locked): one answer, so that it never tells whether an account exists or in what state
    (docs/security.md, "What a refused login says")."""

    code = "invalid_credentials"


class AccountLocked(Locked):
    """Too many failed attempts lock an account until an administrator unlocks it."""

    code = "account_locked"


class UserInactive(NotPermitted):
    """A deactivated user can neither log in nor sign, and is never reactivated."""

    code = "user_inactive"


class AdministrationRefused(NotPermitted):
    """An account change that separation of duties forbids; the refusal is recorded as an
    ``AccessDenied`` event (docs/security.md, "Separation of duties")."""

    code = "administration_refused"


class OwnAccount(AdministrationRefused):
    """No one changes their own account's roles or status (grant, revoke, deactivate,
    unlock): another administrator must."""

    code = "own_account"


class IncompatibleRoles(AdministrationRefused):
    """A user may not hold two roles that ``TL_INCOMPATIBLE_ROLES`` pairs (by default an
    administrator holds no clinical role)."""

    code = "incompatible_roles"


class PasswordExpired(NotPermitted):
    """A password older than the configured maximum age must be changed before login."""

    code = "password_expired"


class TooManyAttempts(Throttled):
    """The account, or the client address, has spent its budget of attempts for now
    (``TL_ATTEMPTS_PER_ACCOUNT``, ``TL_ATTEMPTS_PER_ADDRESS``); no password was checked."""


class PasswordChecksBusy(Overloaded):
    """More password checks are waiting than the service takes (``TL_PASSWORD_QUEUE``)."""


class SessionRequired(CredentialsRefused):
    """Signing happens inside a login session that has not ended."""

    code = "session_required"


class UserIdRequired(CredentialsRefused):
    """The first signing of a session, or one after the idle timeout, needs id and password."""

    code = "user_id_required"


class Conflict(OutOfSequence):
    """The command contradicts the account's state."""

    code = "conflict"


class UserIdTaken(Conflict):
    """User ids are unique and never reused, also after deactivation."""

    code = "user_id_taken"


class RoleAlreadyGranted(Conflict):
    code = "role_already_granted"


class RoleNotGranted(Conflict):
    code = "role_not_granted"


class NotLocked(Conflict):
    code = "not_locked"


class WeakPassword(InvalidValue):
    """Passwords have at least 12 characters and differ from the user id."""

    code = "weak_password"


class InvalidUserId(InvalidValue):
    """User ids are 3-64 characters of a-z, 0-9, '.', '_' and '-'."""

    code = "invalid_user_id"


class ReasonRequired(InvalidValue):
    """Revocations, deactivations and unlocks need a reason."""

    code = "reason_required"


class StudyNotGranted(NotPermitted):
    """The account holds no role in the study it logs in for (a token is for one study,
    with the roles and site the account holds there): HTTP 403. The refusal is recorded
    (``AccessDenied``); it is answered only once the password was right."""

    code = "study_not_granted"


class AccountAdministrationRefused(AdministrationRefused):
    """Creating, deactivating and unlocking an account change it in every study: only an
    administrator acting in the deployment's first study does (docs/security.md)."""

    code = "first_study_administrator_required"


class SiteRequired(InvalidValue):
    """The first role of an account in a study names the account's site in that study."""

    code = "site_required"


class SiteDiffers(Conflict):
    """An account has one site in a study: a grant naming another is refused (revoke the
    account's roles there first)."""

    code = "site_differs"
