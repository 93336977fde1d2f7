"""The refusals of every service, in families (no I/O, so domain modules may raise them).

A refusal has a stable ``code`` that clients rely on, a message for people, and
machine-readable ``details``. A service's refusal subclasses the family it belongs to;
the family decides its HTTP status, in one table (``shared.web.http.STATUSES``):

- ``NotFound`` (404): the command names a record that does not exist;
- ``OutOfSequence`` (409): valid but not now, the protocol's or the record's order
  forbids it (Part 11 §11.10(f));
- ``InvalidValue`` (422): never valid, a value breaks a rule of the protocol or the form;
- ``CredentialsRefused`` (401), ``NotPermitted`` (403), ``Locked`` (423): a user's
  account refuses the login or the signing;
- ``Damaged`` (409): the ledger does not hold what was written (changed behind the
  service's back): nothing is answered from it, and ``verify`` names where;
- ``Throttled`` (429), ``Overloaded`` (503): not now, try again later; nothing was done.
  A refusal whose ``details`` name ``retry_after_seconds`` is answered with a
  ``Retry-After`` header of that many seconds;
- a bare ``Refusal`` (400) belongs to no family: a test refuses it in services/.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Refusal(Exception):
    code: ClassVar[str] = "refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(Refusal):
    """The command names a record that does not exist."""

    code = "not_found"


class OutOfSequence(Refusal):
    """The command is valid but not now: the protocol's order forbids it (Part 11 §11.10(f))."""

    code = "out_of_sequence"


class InvalidValue(Refusal):
    """A value breaks a rule of the protocol or of the record's form."""

    code = "invalid_value"


class CredentialsRefused(Refusal):
    """The user's id, password or session does not prove who they are."""

    code = "credentials_refused"


class NotPermitted(Refusal):
    """The user is known, but their account may not do this now."""

    code = "not_permitted"


class Locked(Refusal):
    """The account is locked until an administrator unlocks it."""

    code = "locked"


class Damaged(Refusal):
    """What a ledger must hold is missing or is not what was written: a report from it
    would be wrong, so none is made (the auditor runs ``verify``)."""

    code = "ledger_damaged"


class Throttled(Refusal):
    """Too many attempts from this account or client address for now: nothing was tried."""

    code = "too_many_attempts"


class Overloaded(Refusal):
    """The service has more of this work waiting than it takes: nothing was done."""

    code = "overloaded"
