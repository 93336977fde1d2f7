"""The endpoints, plots and safety summary of the ledger now come from a history kept
between requests and advanced by the entries appended since, on the real ledger: a
request reads only the new entries, and answers what a full replay answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from bench.endpoints import followed_up
from bench.events import new_entry
from services.projections.application import ProjectionsApplication
from services.projections.ledger import LedgerStore
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Role
from tests.support import principal

pytestmark = pytest.mark.integration
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")


async def append(ledger: LedgerStore, events: Sequence[CloudEvent], first_offset: int) -> None:
    entries = [new_entry(e, "t", 0, first_offset + n) for n, e in enumerate(events)]
    epoch = await ledger.take_writer()
    await ledger.append(entries, [], {("t", 0): first_offset + len(events)}, epoch)


def counting_reads(application: ProjectionsApplication) -> list[int]:
    """How many entries each of the application's ledger reads returned."""
    reads: list[int] = []
    read = application._rows

    async def counted(*args: Any, **kwargs: Any) -> list[asyncpg.Record]:
        rows = await read(*args, **kwargs)
        reads.append(len(rows))
        return rows

    application._rows = counted  # type: ignore[method-assign]
    return reads


async def test_the_endpoints_now_read_only_new_entries_and_equal_a_full_replay(
    ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    events = followed_up(90)  # six subjects, infused and followed up
    await append(ledger, events[:45], 0)
    reads = counting_reads(projections)
    before = await projections.endpoints(AUDITOR)
    await append(ledger, events[45:], 45)
    now = await projections.endpoints(AUDITOR)
    trial, swimmer = await projections.trial(AUDITOR), await projections.plot(AUDITOR, "swimmer")

    assert reads == [45, 45, 0, 0]  # the first half, the second half, then nothing new
    replaying = ProjectionsApplication(ledger, projections.checkpoint_keys)
    assert before == await replaying.endpoints(AUDITOR, position=45)
    assert now == await replaying.endpoints(AUDITOR, position=90)
    assert now["subjects_infused"] == 6
    assert trial == await replaying.trial(AUDITOR)
    assert swimmer == await replaying.plot(AUDITOR, "swimmer", position=90)
