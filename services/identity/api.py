"""HTTP API of the identity authority: login, signing re-authentication, accounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import FastAPI, Request
from pydantic import Field

from services.identity import errors
from services.identity.application import IdentityApplication
from services.identity.domain import User
from shared.adapters.outbox import Outbox
from shared.kernel.envelope import Contract
from shared.kernel.logs import current_correlation_id
from shared.kernel.permissions import table
from shared.kernel.provenance import Actor, Command, Provenance
from shared.web.auth import Meaning, Principal, Role, TokenIssuer, TokenVerifier
from shared.web.http import Authorisation, Caller, authorised, command_app
from shared.web.inputs import Line, Paragraph
from shared.web.store_api import add_store_routes

Clock = Callable[[], datetime]

ERROR_STATUSES: dict[type[Exception], int] = {
    errors.UserNotFound: 404,
    errors.InvalidCredentials: 401,
    errors.SessionRequired: 401,
    errors.AccountLocked: 423,
    errors.UserInactive: 403,
    errors.PasswordExpired: 403,
    errors.UserIdRequired: 401,
    errors.Conflict: 409,
    errors.InvalidValue: 422,
    errors.IdentityError: 400,
}


class LogIn(Contract):
    user_id: Line
    password: Paragraph


class TokenOut(Contract):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime
    user_id: str
    roles: list[str]


class ChangePassword(Contract):
    user_id: Line
    current_password: Paragraph
    new_password: Paragraph


class CreateUser(Contract):
    user_id: Line
    printed_name: Line
    site: Line
    roles: list[Role]
    password: Paragraph


class RoleChange(Contract):
    role: Role
    reason: Paragraph = ""


class Reason(Contract):
    reason: Paragraph


class SignIn(Contract):
    """Re-authentication for one signature: the password, and the id when required."""

    meaning: Meaning
    purpose: str = Field(
        min_length=1,
        max_length=200,
        examples=["enrollment/consent/S-001"],
        description="the step and record the signature is for",
    )
    password: Paragraph
    user_id: Line | None = None


class AssertionOut(Contract):
    assertion: str
    expires_at: datetime
    meaning: Meaning


class UserOut(Contract):
    user_id: str
    printed_name: str
    site: str
    roles: list[str]
    active: bool
    locked: bool
    password_set_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            user_id=user.user_id,
            printed_name=user.printed_name,
            site=user.site,
            roles=sorted(user.roles),
            active=user.active,
            locked=user.locked,
            password_set_at=user.password_set_at,
        )


def create_app(
    application: IdentityApplication,
    issuer: TokenIssuer,
    verifier: TokenVerifier,
    outbox: Outbox,
    clock: Clock | None = None,
) -> FastAPI:
    """The identity HTTP API; ``clock`` gives server UTC time."""
    now = clock or (lambda: datetime.now(UTC))
    authorisation = Authorisation(verifier, table("identity"), application.record_denial)
    app = command_app(
        "identity",
        "Users, roles, login and signing re-authentication. Tokens are EdDSA "
        "JWTs that every service verifies with the public key.",
        ERROR_STATUSES,
        authorisation,
    )
    add_store_routes(app, authorisation, outbox)

    def as_caller(caller: Caller) -> Command:
        return caller.command(now())

    def as_self(user_id: str, request: Request) -> Command:
        # Login and password change: the actor is the person authenticating.
        actor = Actor(user_id, user_id, "self", "")
        correlation = current_correlation_id() or request.headers.get("x-correlation-id") or ""
        return Command(
            Provenance(actor, correlation, None, request.headers.get("x-client-id")), now()
        )

    @app.post("/login", tags=["sessions"])
    def log_in(body: LogIn, request: Request) -> TokenOut:
        """Id and password give a short-lived access token; failures count towards lockout."""
        command = as_self(body.user_id, request)
        principal: Principal = application.log_in(body.user_id, body.password, command)
        token, expires = issuer.access_token(principal, command.now)
        return TokenOut(
            access_token=token,
            expires_at=expires,
            user_id=principal.user_id,
            roles=sorted(principal.roles),
        )

    @app.post("/password", tags=["sessions"])
    def change_password(body: ChangePassword, request: Request) -> UserOut:
        command = as_self(body.user_id, request)
        user = application.change_password(
            body.user_id, body.current_password, body.new_password, command
        )
        return UserOut.of(user)

    @app.post("/signing", tags=["sessions"])
    def sign(body: SignIn, caller: Annotated[Caller, authorised("identity.sign")]) -> AssertionOut:
        """Re-authenticate for one electronic signature; returns a 2-minute assertion."""
        assertion = application.authenticate_signing(
            caller.principal,
            body.user_id,
            body.password,
            body.meaning,
            body.purpose,
            as_caller(caller),
        )
        token, expires = issuer.signing_assertion(assertion)
        return AssertionOut(assertion=token, expires_at=expires, meaning=body.meaning)

    @app.post("/logout", status_code=204, tags=["sessions"])
    def log_out(caller: Annotated[Caller, authorised("identity.log_out")]) -> None:
        application.log_out(caller.principal, as_caller(caller))

    @app.post("/users", status_code=201, tags=["accounts"])
    def create_user(
        body: CreateUser, caller: Annotated[Caller, authorised("identity.create_user")]
    ) -> UserOut:
        user = application.create_user(
            body.user_id,
            body.printed_name,
            body.site,
            frozenset(body.roles),
            body.password,
            as_caller(caller),
        )
        return UserOut.of(user)

    @app.get("/users/{user_id}", tags=["accounts"])
    def get_user(
        user_id: str, caller: Annotated[Caller, authorised("identity.read_users")]
    ) -> UserOut:
        return UserOut.of(application.get_user(user_id))

    @app.post("/users/{user_id}/roles", tags=["accounts"])
    def grant_role(
        user_id: str, body: RoleChange, caller: Annotated[Caller, authorised("identity.grant_role")]
    ) -> UserOut:
        return UserOut.of(application.grant_role(user_id, body.role, as_caller(caller)))

    @app.post("/users/{user_id}/role-revocations", tags=["accounts"])
    def revoke_role(
        user_id: str,
        body: RoleChange,
        caller: Annotated[Caller, authorised("identity.revoke_role")],
    ) -> UserOut:
        user = application.revoke_role(user_id, body.role, body.reason, as_caller(caller))
        return UserOut.of(user)

    @app.post("/users/{user_id}/deactivation", tags=["accounts"])
    def deactivate_user(
        user_id: str,
        body: Reason,
        caller: Annotated[Caller, authorised("identity.deactivate_user")],
    ) -> UserOut:
        return UserOut.of(application.deactivate_user(user_id, body.reason, as_caller(caller)))

    @app.post("/users/{user_id}/unlock", tags=["accounts"])
    def unlock_user(
        user_id: str,
        body: Reason,
        caller: Annotated[Caller, authorised("identity.unlock_user")],
    ) -> UserOut:
        return UserOut.of(application.unlock_user(user_id, body.reason, as_caller(caller)))

    return app
