"""Two projections processes on one ledger, and the writer's lock lost under it (its
database connection ended, as an idle timeout, a proxy or a network cut would): the
standby takes over, the old writer is fenced off, and no checkpoint disagrees with the
ledger; nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from tests.e2e.stack import ServiceProcess
from tests.faults.conftest import Faulty, loaded
from tests.faults.infra import as_superuser
from tests.support import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="package"),
]
# The connection holding the writer's session lock (an advisory lock on a bigint key:
# pg_locks shows its high and low 32 bits as classid and objid), and no other.
END_THE_LOCK_HOLDER = """
WITH k AS (SELECT hashtextextended('ledger-writer:{schema}', 0) AS key)
SELECT pg_terminate_backend(l.pid) FROM pg_locks l, k
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid::bigint = ((k.key >> 32) & 4294967295)
   AND l.objid::bigint = (k.key & 4294967295);
"""


async def epoch(faulty: Faulty) -> int:
    (row,) = await faulty.ledger("SELECT epoch FROM ledger_writer")
    return int(row["epoch"])


async def test_a_writer_that_loses_its_lock_is_fenced_and_every_checkpoint_holds(
    faulty: Faulty,
) -> None:
    stack = faulty.stack
    folder = stack.keys.parent  # where the stack keeps its logs
    standby = ServiceProcess("projections", stack.env, folder, label="projections-2")
    await standby.start()
    try:
        async with loaded(faulty, "LCK") as load:
            await load.until(10)
            before = await epoch(faulty)
            database = stack.projections_settings.database
            ended = await as_superuser(
                database.dbname, END_THE_LOCK_HOLDER.format(schema=database.schema)
            )
            assert " t" in ended, f"no connection held the writer's lock: {ended}"

            async def taken_over() -> bool:
                return await epoch(faulty) > before

            await eventually(taken_over, timeout=30, what="the standby took the ledger over")
            await load.until(len(load.acknowledged) + 20)  # both processes still run
            assert faulty.process("projections").process.poll() is None  # type: ignore[union-attr]
        await faulty.settled(load.acknowledged)  # verify: no checkpoint_mismatch, nothing lost
    finally:
        await standby.stop()
        await standby.client.aclose()
