"""A database superuser appends a forged row after the newest signed checkpoint (the
leaf hash recomputed, the triggers off) and the projections service restarts: its
self-check finds the row, it refuses to sign over it and says so in /ready and its
metrics, and verify names the forged position. The row is then removed (as a restore
from backup would) and the service signs again."""

from __future__ import annotations

import pytest

from tests.faults.conftest import STALL_SECONDS, Faulty, within
from tests.faults.infra import as_superuser

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="package"),
]
LEAF = ("sha256('\\x00'::bytea || convert_to('trial-ledger/entry/v1' || chr(10) || "
        "position::text || chr(10), 'UTF8') || payload)")  # fmt: skip


def forged_after(size: int) -> str:
    """A copy of entry 1 at ``size + 1``, naming a Kafka record that is not its own, with a
    consistent leaf hash: what a superuser who knows the leaf formula would write."""
    return (
        f"INSERT INTO ledger_entries SELECT {size + 1}, gen_random_uuid(), source, event_type, "
        "subject_id, record_id, record_version + 1000, occurred_at, recorded_at, ingested_at, "
        "topic, kafka_partition, kafka_offset + 100000, payload, '\\x00'::bytea "
        "FROM ledger_entries WHERE position = 1;\n"
        f"UPDATE ledger_entries SET leaf_hash = {LEAF} WHERE position = {size + 1};"
    )


def removed(position: int) -> str:
    """The forged row taken out, the rows after it moved back, their leaves recomputed."""
    return (
        f"DELETE FROM ledger_entries WHERE position = {position};\n"
        f"UPDATE ledger_entries SET position = -(position - 1) WHERE position > {position};\n"
        "UPDATE ledger_entries SET position = -position WHERE position < 0;\n"
        f"UPDATE ledger_entries SET leaf_hash = {LEAF} WHERE position >= {position};"
    )


async def test_a_forged_tail_is_found_at_restart_and_never_signed_over(faulty: Faulty) -> None:
    await faulty.settled(set())
    projections, database = faulty.process("projections"), faulty.stack.projections_settings
    await projections.stop()
    (size,) = await faulty.ledger("SELECT max(position) AS n FROM ledger_entries")
    forged = int(size["n"]) + 1
    await as_superuser(database.database.dbname, forged_after(forged - 1),
                       schema=database.database.schema)  # fmt: skip
    await projections.start()
    try:

        async def refuses() -> bool:
            status, checks = await faulty.ready("projections")
            return status == 503 and f"position {forged} (unanchored)" in checks.get("ingest", "")

        await within(STALL_SECONDS + 10, refuses, "the self-check's finding in /ready")
        assert await faulty.metric("projections", "trialledger_ledger_signing_refused") == 1
        verified = await faulty.stack.projections.get(
            "/verify", params={"stores": "false"}, headers=faulty.auditor
        )
        findings = [(f["position"], f["kind"]) for f in verified.json()["findings"]]
        assert (forged, "unanchored") in findings, verified.json()
        (signed,) = await faulty.ledger("SELECT max(tree_size) AS n FROM checkpoints")
        assert signed["n"] < forged, "a checkpoint was signed over the forged row"
    finally:
        await projections.stop()
        await as_superuser(database.database.dbname, removed(forged),
                           schema=database.database.schema)  # fmt: skip
        await projections.start()
    await faulty.all_ready()
    await faulty.settled(set())
