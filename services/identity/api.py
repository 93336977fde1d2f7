"""HTTP API of the identity authority: login, signing re-authentication, accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import FastAPI, Request
from pydantic import Field

from services.identity.application import IdentityApplication
from services.identity.domain import User
from shared.kernel.envelope import Contract
from shared.kernel.logs import current_correlation_id
from shared.kernel.provenance import Actor, Attribution, Provenance
from shared.web.auth import Meaning, Principal, Role, TokenIssuer
from shared.web.inputs import Line, Paragraph
from shared.web.service_app import Application, CommandAct, CommandRouter, Now, Serving, from_state


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


DESCRIPTION = (
    "Users, roles, login and signing re-authentication. Tokens are EdDSA "
    "JWTs that every service verifies with the public key."
)
router = CommandRouter("identity")
Identity = Application[IdentityApplication]
Issuer = Annotated[TokenIssuer, from_state("issuer")]


def create_app(application: IdentityApplication, issuer: TokenIssuer, serving: Serving) -> FastAPI:
    """The identity HTTP API; ``issuer`` signs the tokens it hands out."""
    return router.service_app(DESCRIPTION, application, serving, issuer=issuer)


def _as_self(user_id: str, request: Request, now: datetime) -> Attribution:
    # Login and password change: the actor is the person authenticating.
    actor = Actor(user_id, user_id, "self", "")
    correlation = current_correlation_id() or request.headers.get("x-correlation-id") or ""
    return Attribution(
        Provenance(actor, correlation, None, request.headers.get("x-client-id")), now
    )


@router.post("/login", tags=["sessions"])
def log_in(
    body: LogIn, request: Request, application: Identity, issuer: Issuer, now: Now
) -> TokenOut:
    """Id and password give a short-lived access token; failures count towards lockout."""
    command = _as_self(body.user_id, request, now())
    principal: Principal = application.log_in(body.user_id, body.password, command)
    token, expires = issuer.access_token(principal, command.now)
    return TokenOut(
        access_token=token,
        expires_at=expires,
        user_id=principal.user_id,
        roles=sorted(principal.roles),
    )


@router.post("/password", tags=["sessions"])
def change_password(
    body: ChangePassword, request: Request, application: Identity, now: Now
) -> UserOut:
    command = _as_self(body.user_id, request, now())
    user = application.change_password(
        body.user_id, body.current_password, body.new_password, command
    )
    return UserOut.of(user)


@router.command("/signing", "sign", tags=["sessions"])
def sign(body: SignIn, act: CommandAct, application: Identity, issuer: Issuer) -> AssertionOut:
    """Re-authenticate for one electronic signature; returns a 2-minute assertion."""
    assertion = application.authenticate_signing(
        act.caller.principal,
        body.user_id,
        body.password,
        body.meaning,
        body.purpose,
        act.attribution,
    )
    token, expires = issuer.signing_assertion(assertion)
    return AssertionOut(assertion=token, expires_at=expires, meaning=body.meaning)


@router.command("/logout", "log_out", status_code=204, tags=["sessions"])
def log_out(act: CommandAct, application: Identity) -> None:
    application.log_out(act.caller.principal, act.attribution)


@router.command("/users", "create_user", status_code=201, tags=["accounts"])
def create_user(body: CreateUser, act: CommandAct, application: Identity) -> UserOut:
    user = application.create_user(
        body.user_id,
        body.printed_name,
        body.site,
        frozenset(body.roles),
        body.password,
        act.attribution,
    )
    return UserOut.of(user)


@router.query("/users/{user_id}", "read_users", tags=["accounts"])
def get_user(user_id: str, application: Identity) -> UserOut:
    return UserOut.of(application.get_user(user_id))


@router.command("/users/{user_id}/roles", "grant_role", tags=["accounts"])
def grant_role(user_id: str, body: RoleChange, act: CommandAct, application: Identity) -> UserOut:
    return UserOut.of(application.grant_role(user_id, body.role, act.attribution))


@router.command("/users/{user_id}/role-revocations", "revoke_role", tags=["accounts"])
def revoke_role(user_id: str, body: RoleChange, act: CommandAct, application: Identity) -> UserOut:
    return UserOut.of(application.revoke_role(user_id, body.role, body.reason, act.attribution))


@router.command("/users/{user_id}/deactivation", "deactivate_user", tags=["accounts"])
def deactivate_user(user_id: str, body: Reason, act: CommandAct, application: Identity) -> UserOut:
    return UserOut.of(application.deactivate_user(user_id, body.reason, act.attribution))


@router.command("/users/{user_id}/unlock", "unlock_user", tags=["accounts"])
def unlock_user(user_id: str, body: Reason, act: CommandAct, application: Identity) -> UserOut:
    return UserOut.of(application.unlock_user(user_id, body.reason, act.attribution))
