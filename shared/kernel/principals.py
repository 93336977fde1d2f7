"""Who the caller is, and what a signing assertion says (pure: no token library).

``shared.web.auth`` reads both from the identity authority's tokens; the rules here decide
what they allow, so the event store and the services' applications use them without it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from shared.kernel.errors import OutOfSequence, Overloaded, Refusal
from shared.kernel.provenance import Meaning, Role


class AuthError(Refusal):
    """Base of authentication and authorisation refusals; ``code`` is stable."""

    code = "unauthenticated"


class Unauthenticated(AuthError):
    """No token, or one that is forged, expired or of the wrong kind: HTTP 401."""

    code = "unauthenticated"


class TokenRevoked(Unauthenticated):
    """A valid token whose access the identity authority has since withdrawn (the account
    locked or deactivated, a role of the token revoked, or its session logged out): HTTP 401.
    Log in again (``shared.adapters.revocations``)."""

    code = "token_revoked"


class RevocationsUnconfirmed(Overloaded):
    """The service cannot confirm that it has read every withdrawal of access the identity
    authority published (its feed of the identity topic is behind or Kafka is unreachable):
    it fails closed, HTTP 503; nothing was done."""

    code = "revocations_unconfirmed"


class Forbidden(AuthError):
    """The user is known but none of their roles may run this command: HTTP 403."""

    code = "role_not_permitted"


class StudyNotGranted(Forbidden):
    """The command names a study the access token is not for: a token is good for one
    study only (log in for the other study): HTTP 403."""

    code = "study_not_granted"


class SignatureRefused(AuthError):
    """A signing assertion does not fit this signature (another user, session or meaning)."""

    code = "signature_refused"


class RecordChanged(OutOfSequence):
    """A signature asked for a version of the record that is no longer its latest: it
    changed while the signer was signing. Nothing is recorded; reload the record, review
    the change, and sign its new version (a race lost, not a refused signer)."""

    code = "record_changed"


@dataclass(frozen=True)
class Principal:
    """The authenticated user, as the access token says."""

    user_id: str
    printed_name: str
    site: str
    roles: frozenset[Role]
    session_id: str
    # when the identity authority issued the token (its ``iat``, to the microsecond): a
    # withdrawal of access recorded at or after it refuses the token
    issued_at: datetime | None = field(default=None, compare=False)
    # the study the token is for (its ``study`` claim): a token is good for one study only;
    # None in a token that names none, which is good for the deployment's first study alone
    study_id: str | None = None


@dataclass(frozen=True)
class SigningAssertion:
    """The identity authority's word that ``user_id`` re-authenticated to sign."""

    assertion_id: str
    user_id: str
    printed_name: str
    session_id: str
    meaning: Meaning
    purpose: str
    authenticated_at: datetime
    # the study of the access token it was asked with (its ``study`` claim; the verifier
    # reads an assertion that names none as the first study's): it signs in that study only
    study_id: str | None = None


def new_session_id() -> str:
    return str(uuid.uuid4())


def check_assertion(
    assertion: SigningAssertion, principal: Principal, meaning: Meaning, purpose: str
) -> SigningAssertion:
    """The assertion must be the caller's own, from this session and study, for this
    meaning and purpose."""
    if assertion.user_id != principal.user_id or assertion.session_id != principal.session_id:
        raise SignatureRefused("the signing assertion belongs to another user or session")
    if assertion.study_id != principal.study_id:
        raise SignatureRefused(
            f"the signing assertion is for study {assertion.study_id}, the access token for "
            f"{principal.study_id}",
            expected=principal.study_id,
            given=assertion.study_id,
        )
    if assertion.meaning is not meaning:
        raise SignatureRefused(
            f"this step is signed with meaning {meaning}, the assertion says {assertion.meaning}",
            expected=meaning.value,
            given=assertion.meaning.value,
        )
    if assertion.purpose != purpose:
        _check_not_stale(assertion.purpose, purpose)
        raise SignatureRefused(
            f"the signing assertion is for {assertion.purpose!r}, not {purpose!r}",
            expected=purpose,
            given=assertion.purpose,
        )
    return assertion


def _check_not_stale(signed: str, expected: str) -> None:
    """``RecordChanged`` if ``signed`` names an earlier version (``<record>@<version>``)
    of the very record whose current version ``expected`` names."""
    record, _, version = signed.rpartition("@")
    current_record, _, current = expected.rpartition("@")
    versions = version.isdigit() and current.isdigit()
    if record and record == current_record and versions and int(version) < int(current):
        raise RecordChanged(
            f"{record} changed since the signature was asked for: it is at version "
            f"{current}, the signature names version {version}; reload it and sign again",
            signed_version=int(version),
            current_version=int(current),
        )
