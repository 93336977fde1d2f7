"""Who is acting: roles, access tokens and signing assertions (Part 11 §11.10(d)(g), 11.200).

The identity authority issues both kinds of token, signed with its Ed25519 key
(EdDSA JWT). Every service verifies them with the public key alone, without calling
the authority on each request.

- An *access token* (15 minutes by default) names the user, their roles and their
  login session, and the study it is for (``study``; a token without one is for the
  deployment's first study, ``shared.study.DEFAULT_STUDY_ID``).
- A *signing assertion* (2 minutes) says that the user re-authenticated for one
  electronic signature with a given meaning, in that session, for one purpose (the step
  and the record it signs, e.g. ``enrollment/consent/S-001``), in the study of the access
  token it was asked with (``study``; none: the first study), and signs in no other.
  Each step of a record is signed once, so an assertion cannot sign twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.kernel.principals import (
    AuthError,
    Forbidden,
    Principal,
    SignatureRefused,
    SigningAssertion,
    Unauthenticated,
    check_assertion,
    new_session_id,
)
from shared.kernel.provenance import Meaning, Role
from shared.study import DEFAULT_STUDY_ID

ISSUER = "trial-ledger-identity"
AUDIENCE = "trial-ledger"
ACCESS, SIGNING = "access", "signing"
__all__ = [  # re-exported: the vocabulary of tokens (shared.kernel.principals, provenance)
    "AuthError",
    "Forbidden",
    "Meaning",
    "Principal",
    "Role",
    "SignatureRefused",
    "SigningAssertion",
    "Unauthenticated",
    "check_assertion",
    "new_session_id",
]


class TokenIssuer:
    """Issues access tokens and signing assertions (the identity authority only)."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        access_ttl: timedelta = timedelta(minutes=15),
        assertion_ttl: timedelta = timedelta(minutes=2),
    ) -> None:
        self._key = key
        self.access_ttl = access_ttl
        self.assertion_ttl = assertion_ttl

    def access_token(self, principal: Principal, now: datetime) -> tuple[str, datetime]:
        claims = {
            "sub": principal.user_id,
            "name": principal.printed_name,
            "site": principal.site,
            "roles": sorted(principal.roles),
            "sid": principal.session_id,
        }
        if principal.study_id is not None:
            claims["study"] = principal.study_id
        return self._issue(ACCESS, claims, now, self.access_ttl)

    def signing_assertion(self, assertion: SigningAssertion) -> tuple[str, datetime]:
        claims = {
            "jti": assertion.assertion_id,
            "sub": assertion.user_id,
            "name": assertion.printed_name,
            "sid": assertion.session_id,
            "meaning": assertion.meaning.value,
            "purpose": assertion.purpose,
        }
        if assertion.study_id is not None:
            claims["study"] = assertion.study_id
        return self._issue(SIGNING, claims, assertion.authenticated_at, self.assertion_ttl)

    def _issue(
        self, kind: str, claims: dict[str, Any], now: datetime, ttl: timedelta
    ) -> tuple[str, datetime]:
        """A token of ``kind`` with ``claims``, issued ``now``, and when it expires."""
        expires = now + ttl
        # iat to the microsecond (RFC 7519 NumericDate may be fractional): a withdrawal of
        # access refuses the tokens issued before it, and a token issued just after an
        # unlock, in the same second as the lockout, is not one of them
        issued = now.timestamp()
        claims = {
            "typ": kind,
            **claims,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": issued,
            "exp": expires,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA"), expires


class TokenVerifier:
    """Verifies tokens with the authority's public key; every failure is Unauthenticated."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    def principal(self, token: str) -> Principal:
        claims = self._decode(token, ACCESS)
        try:
            roles = frozenset(Role(role) for role in claims["roles"])
            issued = datetime.fromtimestamp(claims["iat"], tz=UTC)
            # a token that names no study is good for the deployment's first study only
            study = str(claims.get("study") or DEFAULT_STUDY_ID)
            return Principal(
                claims["sub"], claims["name"], claims["site"], roles, claims["sid"], issued, study
            )
        except (KeyError, ValueError, TypeError):
            raise Unauthenticated("the access token lacks a required claim") from None

    def signing_assertion(self, token: str) -> SigningAssertion:
        claims = self._decode(token, SIGNING)
        try:
            return SigningAssertion(
                assertion_id=claims["jti"],
                user_id=claims["sub"],
                printed_name=claims["name"],
                session_id=claims["sid"],
                meaning=Meaning(claims["meaning"]),
                purpose=str(claims["purpose"]),
                authenticated_at=datetime.fromtimestamp(claims["iat"], tz=UTC),
                # an assertion that names no study is good for the first study only
                study_id=str(claims.get("study") or DEFAULT_STUDY_ID),
            )
        except (KeyError, ValueError, TypeError):
            raise SignatureRefused("the signing assertion lacks a required claim") from None

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(f"the {kind} token has expired") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the {kind} token is not valid: {error}") from None
        if claims.get("typ") != kind:
            raise Unauthenticated(f"a {claims.get('typ')} token was given where {kind} is needed")
        return claims
