"""HTTP API of the identity authority: login, signing re-authentication, accounts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import FastAPI, Request
from pydantic import Field

from services.identity import errors
from services.identity.application import IdentityApplication
from services.identity.domain import (
    AccountPolicy,
    User,
    check_account_administrator,
    check_compatible,
)
from shared.kernel.access import Denial
from shared.kernel.envelope import Contract
from shared.kernel.logs import current_correlation_id
from shared.kernel.provenance import Actor, Attribution, Provenance
from shared.kernel.settings import PasswordCheckSettings
from shared.study import DEFAULT_STUDY_ID, acting_study
from shared.web.auth import Meaning, Principal, Role, TokenIssuer
from shared.web.inputs import Line, Paragraph
from shared.web.pool import BoundedPool
from shared.web.service_app import (
    Act,
    Application,
    CommandAct,
    CommandRouter,
    Now,
    Serving,
    from_state,
)
from shared.web.throttle import Attempts, Buckets, Refused

log = logging.getLogger(__name__)
T = TypeVar("T")


class LogIn(Contract):
    user_id: Line
    password: Paragraph


class TokenOut(Contract):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime
    user_id: str
    roles: list[str]
    study_id: str = Field(
        description="the study the token is for (its `study` claim; a token of `POST /login` "
        "names none and is for the deployment's first study): the roles are the account's "
        "there"
    )


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
    site: Line | None = Field(
        default=None,
        description="the account's site in the study (a grant under /studies/<id>): needed "
        "for its first role there, and never another than its roles there have; in the "
        "first study, the account's site is the one it was created with",
    )


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
    site: str = Field(description="the account's site in the study asked (`study_id`)")
    roles: list[str] = Field(description="the account's roles in the study asked")
    active: bool
    locked: bool
    password_set_at: datetime
    conflicting_roles: list[list[str]] = Field(
        default_factory=list,
        description="role pairs the account holds that separation of duties forbids "
        "(TL_INCOMPATIBLE_ROLES); only an account made before the rule can hold any",
    )
    study_id: str = Field(
        description="the study whose grant `site` and `roles` are: the route's (/users/...: "
        "the deployment's first study); an account with no grant there has no roles and an "
        "empty site"
    )

    @classmethod
    def of(cls, user: User, policy: AccountPolicy, study_id: str = DEFAULT_STUDY_ID) -> UserOut:
        conflicts = user.conflicts(policy, study_id)
        grant = user.grant_in(study_id)
        return cls(
            conflicting_roles=[[a.value, b.value] for a, b in conflicts],
            user_id=user.user_id,
            printed_name=user.printed_name,
            site="" if grant is None else grant.site,
            roles=sorted(user.roles_in(study_id)),
            study_id=study_id,
            active=user.active,
            locked=user.locked,
            password_set_at=user.password_set_at,
        )


class PasswordChecks:
    """Where the service checks and hashes passwords: within each account's and client
    address's budget of attempts (``shared.web.throttle``; refused before any hash, 429
    ``too_many_attempts``), in a bounded pool of threads (``shared.web.pool``; 503
    ``overloaded`` beyond its queue), never on the event loop."""

    def __init__(
        self,
        settings: PasswordCheckSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = settings or PasswordCheckSettings()
        window = settings.window_seconds
        kinds = {
            "account": Buckets(settings.attempts_per_account, window),
            "address": Buckets(settings.attempts_per_address, window),
        }
        self.attempts = Attempts(kinds, clock)
        self.pool = BoundedPool("password", settings.workers, settings.queue, _busy)

    async def attempt(
        self,
        request: Request,
        application: IdentityApplication,
        who: Attribution,
        command: str,
        call: Callable[[], T],
    ) -> T:
        """``call()`` (an attempt of ``who``'s account, as ``command``) in the pool, if the
        account and the client address have attempts left; a refusal is recorded once a
        window per account or address (``AccessDenied``, ``too_many_attempts``)."""
        keys = {"account": who.provenance.actor.user_id, "address": client_address(request)}
        refused = self.attempts.take(keys)
        if refused is not None:
            await self._refuse(application, who, command, refused)
        failed = False
        try:
            return await self.pool.run(call)
        except (errors.InvalidCredentials, errors.AccountLocked):
            failed = True  # a wrong password, or a locked account's: it spends its attempts
            raise
        finally:
            if not failed:  # a right password, another refusal, or never tried (503)
                self.attempts.give_back(keys)

    async def _refuse(
        self, application: IdentityApplication, who: Attribution, command: str, refused: Refused
    ) -> None:
        if refused.first:  # each refusal is logged with its answer; a flood is recorded once
            log.warning(
                "attempts refused until their budget refills command=%s by=%s key=%s "
                "retry_after=%d",
                command,
                refused.kind,
                refused.key,
                refused.retry_after_seconds,
            )
            denial = denial_of(who, command, errors.TooManyAttempts.code)
            await asyncio.to_thread(application.record_denial, denial)
        raise errors.TooManyAttempts(
            f"too many attempts from this {refused.kind} for now; try again in "
            f"{refused.retry_after_seconds} s",
            retry_after_seconds=refused.retry_after_seconds,
            limited=refused.kind,
        )


def _busy() -> errors.PasswordChecksBusy:
    return errors.PasswordChecksBusy(
        "more password checks are waiting than this service takes; try again shortly",
        retry_after_seconds=1,
    )


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy: what uvicorn takes from
    ``X-Forwarded-For`` of the proxies it trusts, ``FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else "unknown"


def denial_of(who: Attribution, command: str, reason_code: str) -> Denial:
    """The record of ``who``'s refused ``command`` (as ``Authorisation`` records a 403), in
    the study ``who`` acts in (None: the first study's route, as before studies)."""
    actor, provenance = who.provenance.actor, who.provenance
    return Denial(
        study_id=provenance.study_id,
        user_id=actor.user_id,
        printed_name=actor.printed_name,
        site=actor.site,
        roles=(actor.role,),
        command=command,
        reason_code=reason_code,
        subject_id=None,
        correlation_id=provenance.correlation_id,
        client_id=provenance.client_id,
    )


DESCRIPTION = (
    "Users, roles, login and signing re-authentication. Tokens are EdDSA "
    "JWTs that every service verifies with the public key."
)
router = CommandRouter("identity")
Identity = Application[IdentityApplication]
Issuer = Annotated[TokenIssuer, from_state("issuer")]
Checks = Annotated[PasswordChecks, from_state("checks")]


def create_app(
    application: IdentityApplication,
    issuer: TokenIssuer,
    serving: Serving,
    checks: PasswordChecks | None = None,
) -> FastAPI:
    """The identity HTTP API; ``issuer`` signs the tokens it hands out, ``checks`` (by
    default, with the default settings) is where passwords are checked."""
    checks = checks or PasswordChecks()
    return router.service_app(DESCRIPTION, application, serving, issuer=issuer, checks=checks)


def _as_self(user_id: str, request: Request, now: datetime) -> Attribution:
    # Login and password change: the actor is the person authenticating, in the study the
    # path names (/studies/<id>/login); none on the first study's route, as before studies
    actor = Actor(user_id, user_id, "self", "")
    correlation = current_correlation_id() or request.headers.get("x-correlation-id") or ""
    study_id = request.path_params.get("study_id")
    return Attribution(
        Provenance(actor, correlation, None, request.headers.get("x-client-id"), study_id), now
    )


class SeparationOfDutiesOut(Contract):
    incompatible_roles: list[list[str]] = Field(
        description="every role pair no one may hold together (TL_INCOMPATIBLE_ROLES, "
        "groups expanded), each pair as conflicting_roles names it, sorted"
    )


@router.get("/separation-of-duties", tags=["accounts"])
def separation_of_duties(application: Identity) -> SeparationOfDutiesOut:
    """The role pairs this service refuses together, for the services that must judge
    accounts by the same pairs (the projections' account review compares them in its
    ``/ready``): not secret, and asked without a token."""
    return SeparationOfDutiesOut(incompatible_roles=application.policy.duties.pairs())


@router.post("/login", tags=["sessions"])
async def log_in(
    body: LogIn, request: Request, application: Identity, issuer: Issuer, now: Now, checks: Checks
) -> TokenOut:
    """Id and password give a short-lived access token for the study the path names
    (``/studies/<id>/login``; ``/login``: the deployment's first study), with the roles and
    site the account holds there; failures count towards lockout. A right password of an
    account with no role in the study is refused, 403 ``study_not_granted``, and the
    refusal recorded (``AccessDenied``)."""
    command = _as_self(body.user_id, request, now())
    try:
        principal: Principal = await checks.attempt(
            request,
            application,
            command,
            "identity.log_in",
            lambda: application.log_in(body.user_id, body.password, command),
        )
    except errors.StudyNotGranted as refusal:
        log.warning("login refused: no grant in the study user=%s study=%s", body.user_id,
                    acting_study(command.provenance))  # fmt: skip
        denial = denial_of(command, "identity.log_in", refusal.code)
        await asyncio.to_thread(application.record_denial, denial)
        raise
    token, expires = issuer.access_token(principal, command.now)
    return TokenOut(
        access_token=token,
        expires_at=expires,
        user_id=principal.user_id,
        roles=sorted(principal.roles),
        study_id=principal.study_id or DEFAULT_STUDY_ID,
    )


@router.post("/password", tags=["sessions"])
async def change_password(
    body: ChangePassword, request: Request, application: Identity, now: Now, checks: Checks
) -> UserOut:
    command = _as_self(body.user_id, request, now())
    user = await checks.attempt(
        request,
        application,
        command,
        "identity.change_password",
        lambda: application.change_password(
            body.user_id, body.current_password, body.new_password, command
        ),
    )
    return UserOut.of(
        user, application.policy, request.path_params.get("study_id", DEFAULT_STUDY_ID)
    )


@router.command("/signing", "sign", tags=["sessions"])
async def sign(
    body: SignIn,
    request: Request,
    act: CommandAct,
    application: Identity,
    issuer: Issuer,
    checks: Checks,
) -> AssertionOut:
    """Re-authenticate for one electronic signature; returns a 2-minute assertion."""
    attribution = act.attribution
    assertion = await checks.attempt(
        request,
        application,
        attribution,
        "identity.sign",
        lambda: application.authenticate_signing(
            act.caller.principal,
            body.user_id,
            body.password,
            body.meaning,
            body.purpose,
            attribution,
        ),
    )
    token, expires = issuer.signing_assertion(assertion)
    return AssertionOut(assertion=token, expires_at=expires, meaning=body.meaning)


@router.command("/logout", "log_out", status_code=204, tags=["sessions"])
def log_out(act: CommandAct, application: Identity) -> None:
    application.log_out(act.caller.principal, act.attribution)


def _administering(act: Act, account: str, call: Callable[[], T]) -> T:
    """``call()``, a change of ``account`` by ``act``'s caller; a change that separation of
    duties forbids (their own account, or roles that may not be held together) is recorded
    as an ``AccessDenied`` event naming ``account`` (``AccessDenied.v2``), like a refused
    role, before it is answered (blocking)."""
    try:
        return call()
    except errors.AdministrationRefused as refusal:
        log.warning("account change refused command=%s by=%s code=%s %s", act.command,
                    act.caller.principal.user_id, refusal.code, refusal.message)  # fmt: skip
        act.record_refusal(refusal.code, target_user_id=account)
        raise


@router.command("/users", "create_user", status_code=201, tags=["accounts"])
async def create_user(
    body: CreateUser, act: CommandAct, application: Identity, checks: Checks
) -> UserOut:
    attribution = act.attribution
    roles = frozenset(body.roles)

    def check() -> None:  # refused before any hash: another study's administrator, or
        check_account_administrator(body.user_id, attribution)  # roles that may not be
        check_compatible(body.user_id, frozenset(), application.policy, roles)  # together

    await asyncio.to_thread(_administering, act, body.user_id, check)
    user = await checks.pool.run(  # an administrator's: hashed in the pool, no attempt budget
        lambda: application.create_user(
            body.user_id,
            body.printed_name,
            body.site,
            roles,
            body.password,
            attribution,
        )
    )
    return UserOut.of(user, application.policy, act.caller.study_id)


@router.query("/users/{user_id}", "read_users", tags=["accounts"])
def get_user(user_id: str, act: CommandAct, application: Identity) -> UserOut:
    """The account, with its site and roles in the caller's study."""
    return UserOut.of(application.get_user(user_id), application.policy, act.caller.study_id)


@router.command("/users/{user_id}/roles", "grant_role", tags=["accounts"])
def grant_role(user_id: str, body: RoleChange, act: CommandAct, application: Identity) -> UserOut:
    user = _administering(
        act,
        user_id,
        lambda: application.grant_role(user_id, body.role, act.attribution, body.reason, body.site),
    )
    return UserOut.of(user, application.policy, act.caller.study_id)


@router.command("/users/{user_id}/role-revocations", "revoke_role", tags=["accounts"])
def revoke_role(user_id: str, body: RoleChange, act: CommandAct, application: Identity) -> UserOut:
    user = _administering(
        act,
        user_id,
        lambda: application.revoke_role(user_id, body.role, body.reason, act.attribution),
    )
    return UserOut.of(user, application.policy, act.caller.study_id)


@router.command("/users/{user_id}/deactivation", "deactivate_user", tags=["accounts"])
def deactivate_user(user_id: str, body: Reason, act: CommandAct, application: Identity) -> UserOut:
    user = _administering(
        act, user_id, lambda: application.deactivate_user(user_id, body.reason, act.attribution)
    )
    return UserOut.of(user, application.policy, act.caller.study_id)


@router.command("/users/{user_id}/unlock", "unlock_user", tags=["accounts"])
def unlock_user(user_id: str, body: Reason, act: CommandAct, application: Identity) -> UserOut:
    user = _administering(
        act, user_id, lambda: application.unlock_user(user_id, body.reason, act.attribution)
    )
    return UserOut.of(user, application.policy, act.caller.study_id)
