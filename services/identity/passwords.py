"""Password hashes: argon2id with OWASP's parameters (docs/security.md, "Password hashes").

OWASP's Password Storage Cheat Sheet: "Use Argon2id with a minimum configuration of 19 MiB
of memory, an iteration count of 2, and 1 degree of parallelism" (m=19456, t=2, p=1). One
lane keeps one hash on one core, so the hashing pool's threads (a core each) hash side by
side; 19 MiB rather than the equivalent 46 MiB at t=1 keeps many parallel logins within
memory. A hash names its parameters, so hashes made with other ones keep verifying.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19_456  # 19 MiB
ITERATIONS = 2
LANES = 1
HASHER = PasswordHasher(time_cost=ITERATIONS, memory_cost=MEMORY_KIB, parallelism=LANES)


class Passwords:
    """Hashes new passwords and checks given ones, taking as long for an unknown account as
    for a known one (a dummy hash with the same parameters stands in for the missing one)."""

    hasher = HASHER

    def __init__(self) -> None:
        _dummy_hash()  # made now, not in the first unknown login (which would take longer)

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def matches(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` is the one of ``password_hash``; for None (no such account),
        False after checking a dummy hash, so that the answer takes as long."""
        try:
            matched = self.hasher.verify(password_hash or _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False
        return matched and password_hash is not None


@functools.cache
def _dummy_hash() -> str:
    """The hash of a random password nobody knows, made once per process."""
    return HASHER.hash(secrets.token_urlsafe(32))
