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


async def test_kill_9_of_a_command_service_during_load_loses_no_acknowledged_command(
    faulty: Faulty,
) -> None:
    enrollment = faulty.process("enrollment")
    async with loaded(faulty, "K9E") as load:
        await load.until(20)
        await enrollment.kill()  # its relay dies with it, mid-batch or not
        status, _ = await faulty.ready("enrollment")
        assert status is None, "a killed service must not look ready"
        await enrollment.start()
        await load.until(len(load.acknowledged) + 20)
    assert load.outcomes["201"] == len(load.acknowledged)
    await faulty.all_ready()
    await faulty.settled(load.acknowledged)


async def test_kill_9_of_projections_during_ingest_loses_and_doubles_nothing(
    faulty: Faulty,
) -> None:
    projections = faulty.process("projections")
    async with loaded(faulty, "K9P") as load:
        await load.until(10)
        await projections.kill()  # between a batch's append and its Kafka commit, or not
        assert (await faulty.ready("projections"))[0] is None
        await load.until(len(load.acknowledged) + 30)  # published while the ledger is down
        await projections.start()
        await load.until(len(load.acknowledged) + 10)
    await faulty.all_ready()
    await faulty.settled(load.acknowledged)
