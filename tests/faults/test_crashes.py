"""kill -9 of a command service during a load, and of the projections service during its
ingest: no acknowledged command is lost, no event is in the ledger twice, and everything
recovers when the process is started again (as a supervisor would)."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Faulty, loaded

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="package"),
]


# kill -9 of one process while a load of registrations runs: which process, the prefix of
# its load's subjects, and how many more acknowledgements the load waits for before the
# kill, while the process is down and after it is started again.
KILLS = [
    # the enrollment service's relay dies with it, mid-batch or not
    pytest.param(
        "enrollment",
        "K9E",
        (20, 0, 20),
        id="a_command_service_during_load_loses_no_acknowledged_command",
    ),
    # between a batch's append and its Kafka commit, or not; 30 published while it is down
    pytest.param(
        "projections", "K9P", (10, 30, 10), id="projections_during_ingest_loses_and_doubles_nothing"
    ),
]


@pytest.mark.parametrize(("service", "prefix", "acknowledgements"), KILLS)
async def test_kill_9_during_load(
    faulty: Faulty, service: str, prefix: str, acknowledgements: tuple[int, int, int]
) -> None:
    before, while_down, after = acknowledgements
    process = faulty.process(service)
    async with loaded(faulty, prefix) as load:
        await load.until(before)
        await process.kill()
        status, _ = await faulty.ready(service)
        assert status is None, "a killed service must not look ready"
        await load.until(len(load.acknowledged) + while_down)
        await process.start()
        await load.until(len(load.acknowledged) + after)
    assert load.outcomes["201"] == len(load.acknowledged)
    await faulty.all_ready()
    await faulty.settled(load.acknowledged)
