"""The views follow the appends (``Follower``): coalesced catch-ups, nothing appended left
out of the views when a session ends, and a failed catch-up raised, not swallowed."""

from __future__ import annotations

import asyncio

import pytest

from services.projections.application import ProjectionsApplication
from services.projections.ingest import Follower
from services.projections.ledger import LedgerStore
from tests.projections.conftest import Feed, published_events
from tests.support import eventually


class CatchUps:
    """A catch-up that records what was appended when it began, and waits to be let go."""

    def __init__(self) -> None:
        self.appended = 0
        self.seen: list[int] = []
        self.go = asyncio.Event()
        self.fail = False

    async def __call__(self) -> None:
        began_with = self.appended
        await self.go.wait()
        if self.fail:
            raise RuntimeError("a corrupt entry")
        self.seen.append(began_with)


async def test_appends_during_a_catch_up_are_caught_up_by_one_more() -> None:
    catch_ups = CatchUps()
    follower = Follower(catch_ups)
    try:
        catch_ups.appended = 1
        follower.due()
        await asyncio.sleep(0)  # the first catch-up begins, and waits
        for n in (2, 3, 4):
            catch_ups.appended = n
            follower.due()
        waiting = asyncio.create_task(follower.caught_up())
        await asyncio.sleep(0)
        assert not waiting.done()  # not before the appends' entries are in the views
        catch_ups.go.set()
        await waiting
        assert catch_ups.seen == [1, 4]  # three appends, one catch-up after the first
    finally:
        await follower.stop()


async def test_a_follower_told_nothing_is_caught_up_at_once() -> None:
    follower = Follower(CatchUps())
    try:
        await asyncio.wait_for(follower.caught_up(), 1)
    finally:
        await follower.stop()


async def test_a_failed_catch_up_is_raised_by_check_and_caught_up() -> None:
    catch_ups = CatchUps()
    catch_ups.fail = True
    catch_ups.go.set()
    follower = Follower(catch_ups)
    try:
        follower.check()  # nothing failed yet
        follower.due()
        with pytest.raises(RuntimeError, match="a corrupt entry"):
            await follower.caught_up()
        with pytest.raises(RuntimeError, match="a corrupt entry"):
            follower.check()
    finally:
        await follower.stop()


@pytest.mark.integration
async def test_a_catch_up_that_fails_in_ingest_ends_the_session_and_the_ledger_goes_on(
    filled: int,
    feed: Feed,
    ledger: LedgerStore,
    projections: ProjectionsApplication,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The views refuse a tampered entry (``CorruptEntry``) while the ingester appends: the
    session ends with that error, as it did when the views caught up inside the append's
    step, and later events still reach the ledger; the views stay before the entry."""
    for table in ("audit_trail", "subject_states", "view_positions"):
        await ledger.pool.execute(f"DELETE FROM {table}")
    await feed.as_superuser(
        "UPDATE ledger_entries SET payload = convert_to('{\"id\": 1}', 'UTF8') WHERE position = 3;"
    )
    more = published_events(
        subjects=3
    )  # the two subjects' events again (the same ids), and a third
    await feed.publish(more)
    ingester = feed.ingester()
    stopping = asyncio.Event()
    task = asyncio.create_task(ingester.run(stopping))

    async def failed() -> bool:
        interrupted = [r.getMessage() for r in caplog.records if "interrupted" in r.msg]
        return await ledger.size() == len(more) > filled and any(
            "CorruptEntry" in m and "ledger entry 3: not an event" in m for m in interrupted
        )

    try:
        await eventually(failed, what="the views' error ending the session")
    finally:
        stopping.set()
        await task
    assert await projections.views.position() < 3
