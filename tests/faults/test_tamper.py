"""A database superuser appends a forged row after the newest signed checkpoint (the
leaf hash recomputed, the triggers off) and the projections service restarts: its
self-check finds the row, it refuses to sign over it and says so in /ready and its
metrics, and verify names the forged position. The row is then removed (as a restore
from backup would) and the service signs again.

The running service has its checkpoints cosigned by the stack's witness, serves them
cosigned, and ``verify`` with the witness's vkey names a cosigned checkpoint a superuser
deleted (put back after, as a restore would)."""

from __future__ import annotations

import pytest

from services.projections.config import witness_verifier
from services.projections.notes import open_note
from tests.faults.conftest import STALL_SECONDS, Faulty, within
from tests.faults.infra import as_superuser
from tests.support import eventually

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


@pytest.mark.part11("11.10(a)")
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


async def cosigned_size(faulty: Faulty) -> int:
    """The size of the newest checkpoint, once the witness has cosigned it."""
    assert faulty.witness is not None
    witness = witness_verifier(faulty.witness.vkey)

    async def cosigned() -> bool:
        note = (await faulty.stack.projections.get("/checkpoint")).text
        try:
            open_note(note, [witness])
        except ValueError:
            return False
        return True

    await eventually(cosigned, timeout=30, what="the newest checkpoint cosigned")
    note = (await faulty.stack.projections.get("/checkpoint")).text
    return int(note.splitlines()[1])


async def witnessed(faulty: Faulty) -> list[tuple[int, str]]:
    assert faulty.witness is not None
    params = {"stores": "false", "witness": faulty.witness.vkey}
    await faulty.refresh()
    verified = await faulty.stack.projections.get("/verify", params=params, headers=faulty.auditor)
    assert verified.status_code == 200, verified.text
    return [(f["position"], f["kind"]) for f in verified.json()["findings"]]


async def test_the_running_ledger_is_cosigned_and_verifies_with_its_witness(
    faulty: Faulty,
) -> None:
    await faulty.settled(set())
    assert await cosigned_size(faulty) >= 1
    assert await witnessed(faulty) == []
    assert await faulty.metric("projections", "trialledger_witness_failing") == 0


@pytest.mark.part11("11.10(a)")
async def test_a_deleted_cosigned_checkpoint_is_named_by_verify_with_the_witness(
    faulty: Faulty,
) -> None:
    await faulty.settled(set())
    size = await cosigned_size(faulty)
    database = faulty.stack.projections_settings.database
    kept = "CREATE TABLE IF NOT EXISTS public.kept_checkpoint AS TABLE checkpoints WITH NO DATA;\n"
    await as_superuser(database.dbname, kept + "INSERT INTO public.kept_checkpoint SELECT * "
                       f"FROM checkpoints WHERE tree_size = {size};\n"
                       f"DELETE FROM checkpoints WHERE tree_size = {size};",
                       schema=database.schema)  # fmt: skip
    try:
        assert (size, "checkpoint_deleted") in await witnessed(faulty)
    finally:  # put back, as a restore from backup would
        await as_superuser(database.dbname, "INSERT INTO checkpoints SELECT * FROM "
                           "public.kept_checkpoint; DROP TABLE public.kept_checkpoint;",
                           schema=database.schema)  # fmt: skip
    assert await witnessed(faulty) == []
