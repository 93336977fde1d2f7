"""Whether this service judges accounts by the same forbidden role pairs as identity.

The account review (``services.projections.accounts``) lists the accounts that hold a pair
separation of duties forbids, by this service's ``TL_INCOMPATIBLE_ROLES``; identity refuses
grants by its own. Both must be given the same value (docs/security.md, "Separation of
duties"), and nothing else would notice if they were not: the review would list accounts
identity allows, or miss those it forbids. So ``/ready`` compares this service's pairs with
those identity publishes (``GET /separation-of-duties``, no token), each time it checks:

- ``ok``: the same pairs;
- ``mismatch ...``: identity forbids other pairs, named: not ready until one of the two
  settings is changed and its service restarted;
- ``ok, unconfirmed ...``: identity has not answered since this process started; ready
  (the ledger serves auditors while identity is down, e.g. a projections container started
  alone), with the note in ``/ready`` and a warning in the log. Once it has
  answered, an identity that stops answering keeps the last comparison (settings change only
  with a restart, and the next answer compares again), so an identity outage does not take
  the auditors' ledger out of service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import httpx

from shared.kernel.permissions import SeparationOfDuties

log = logging.getLogger(__name__)

CHECK = "separation_of_duties"  # its name in /ready
PATH = "/separation-of-duties"


@dataclass
class DutiesCheck:
    """A ``/ready`` check (``shared.adapters.readings.Checked``) of this service's pairs
    against identity's, at ``identity_url``: asked at most every ``interval`` seconds, with
    one client for the process's life, so a ``/ready`` between asks does no I/O (and an
    identity that does not answer delays at most one ``/ready`` per interval)."""

    duties: SeparationOfDuties
    identity_url: str
    timeout: float = 2.0
    http: httpx.AsyncClient | None = None  # a client of identity to use (tests); else its own
    interval: float = 10.0  # seconds between asks of identity
    _outcome: str | None = field(default=None, init=False)  # what /ready says now
    _last: str | None = field(default=None, init=False)  # the last comparison's outcome
    _asked_at: float = field(default=float("-inf"), init=False)
    _own: httpx.AsyncClient | None = field(default=None, init=False)

    async def run(self, stopping: asyncio.Event) -> None:
        """Nothing to do between checks but close its client at the end (a ``Worker``, so
        that ``serve`` checks it)."""
        try:
            await stopping.wait()
        finally:
            if self._own is not None:
                await self._own.aclose()

    async def problems(self) -> dict[str, str]:
        if self._outcome is None or time.monotonic() - self._asked_at >= self.interval:
            self._asked_at = time.monotonic()
            self._outcome = await self._compare()
        return {CHECK: self._outcome}

    async def _compare(self) -> str:
        try:
            theirs = await self._identity_pairs()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            if self._last is not None:
                return self._last
            why = f"{type(error).__name__}: {error}"[:200]
            log.warning("separation of duties not yet compared with identity's: %s", why)
            return (f"ok, unconfirmed: identity at {self.identity_url} did not give its pairs "
                    f"({why})")  # fmt: skip
        self._last = compare(self.duties.pairs(), theirs)
        if self._last != "ok":
            log.warning("separation of duties differs from identity's: %s", self._last)
        return self._last

    async def _identity_pairs(self) -> list[list[str]]:
        client = self.http or self._own
        if client is None:
            client = self._own = httpx.AsyncClient(base_url=self.identity_url)
        answer = await client.get(PATH, timeout=self.timeout)
        answer.raise_for_status()
        pairs = answer.json()["incompatible_roles"]
        return sorted([str(a), str(b)] for a, b in pairs)


def compare(ours: list[list[str]], identity: list[list[str]]) -> str:
    """``ok``, or the mismatch named: the pairs only one side forbids."""
    if ours == identity:
        return "ok"
    only_identity = [p for p in identity if p not in ours]
    only_ours = [p for p in ours if p not in identity]
    return (
        "mismatch: TL_INCOMPATIBLE_ROLES differs from identity's (give both the same value); "
        f"identity alone forbids {_named(only_identity)}; this service alone {_named(only_ours)}"
    )


def _named(pairs: list[list[str]]) -> str:
    return ", ".join(f"{a}+{b}" for a, b in pairs) or "nothing"
