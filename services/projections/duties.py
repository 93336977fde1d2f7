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
from dataclasses import dataclass, field

import httpx

from shared.kernel.permissions import SeparationOfDuties

log = logging.getLogger(__name__)

CHECK = "separation_of_duties"  # its name in /ready
PATH = "/separation-of-duties"


@dataclass
class DutiesCheck:
    """A ``/ready`` check (``shared.adapters.readings.Checked``) of this service's pairs
    against identity's, at ``identity_url``."""

    duties: SeparationOfDuties
    identity_url: str
    timeout: float = 2.0
    http: httpx.AsyncClient | None = None  # a client of identity to use (tests); else one per check
    _last: str | None = field(default=None, init=False)  # the last comparison's outcome

    async def run(self, stopping: asyncio.Event) -> None:
        """Nothing to do between checks (a ``Worker``, so that ``serve`` checks it)."""
        await stopping.wait()

    async def problems(self) -> dict[str, str]:
        try:
            theirs = await self._identity_pairs()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            if self._last is not None:
                return {CHECK: self._last}
            why = f"{type(error).__name__}: {error}"[:200]
            log.warning("separation of duties not yet compared with identity's: %s", why)
            return {CHECK: f"ok, unconfirmed: identity at {self.identity_url} did not give "
                           f"its pairs ({why})"}  # fmt: skip
        self._last = compare(self.duties.pairs(), theirs)
        if self._last != "ok":
            log.warning("separation of duties differs from identity's: %s", self._last)
        return {CHECK: self._last}

    async def _identity_pairs(self) -> list[list[str]]:
        if self.http is not None:
            answer = await self.http.get(PATH, timeout=self.timeout)
        else:
            async with httpx.AsyncClient(base_url=self.identity_url, timeout=self.timeout) as http:
                answer = await http.get(PATH)
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
