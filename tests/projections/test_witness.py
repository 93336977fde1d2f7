"""A real litewitness (its own process, key and store) cosigns the ledger's checkpoints;
``verify`` with its vkey names a rollback, deleted checkpoints and a tail forged before
its newest cosignature, each done by a database superuser with the triggers off; a
witness that is down never stops ingest, and /ready and the metrics say so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.projections import witness as witness_module
from services.projections.application import ProjectionsApplication
from services.projections.config import witness_verifier
from services.projections.domain import Checkpoint
from services.projections.integrity import WitnessTrust
from services.projections.ledger import LedgerStore
from services.projections.notes import CheckpointText, Verifier, open_note
from services.projections.witness import Cosigner, WitnessConfig, WitnessError
from shared.web.observability import instrument
from tests.projections.conftest import CHECKPOINT_KEY, Feed, published_events
from tests.support import asgi_client, eventually
from tests.witness import Witness, running_witness

pytestmark = pytest.mark.integration
LEAF = ("sha256('\\x00'::bytea || convert_to('trial-ledger/entry/v1' || chr(10) || "
        "position::text || chr(10), 'UTF8') || payload)")  # fmt: skip


@pytest.fixture
async def witness(tmp_path: Path, ledger: LedgerStore) -> AsyncIterator[Witness]:
    """A litewitness that witnesses this test's ledger (its origin and checkpoint key)."""
    async with running_witness(tmp_path / "witness") as running:
        log_key = Verifier.of(ledger.origin, CHECKPOINT_KEY.public_key()).vkey()
        await running.register(ledger.origin, [log_key])
        yield running


def cosigner(ledger: LedgerStore, witness: Witness, stall_after: float = 30.0) -> Cosigner:
    config = WitnessConfig(witness.url, witness_verifier(witness.vkey), 0.2, stall_after)
    return Cosigner(ledger, config)


@pytest.fixture
async def cosigned(feed: Feed, ledger: LedgerStore, witness: Witness) -> int:
    """27 entries, a checkpoint every 5 and at 27, each cosigned by the witness."""
    events = published_events(subjects=3)
    await feed.ingest_all(events, checkpoint_every=5, batch_size=500)
    async with httpx.AsyncClient() as client:
        await cosigner(ledger, witness).step(client)
    assert sorted(await ledger.cosignatures()) == [5, 10, 15, 20, 25, 27]
    return len(events)


async def findings(
    ledger: LedgerStore, witness: Witness, ask: bool = True
) -> list[tuple[int, str]]:
    """(position, kind) of each finding of verify with the witness's vkey (``ask``: and
    asking the witness itself for its newest cosigned checkpoint)."""
    application = ProjectionsApplication(ledger, [CHECKPOINT_KEY.public_key()])
    trust = WitnessTrust(witness_verifier(witness.vkey), witness.url if ask else None)
    report = await application.verify_unattributed(witness=trust)
    return [(f.position, f.kind) for f in report.findings]


async def test_a_checkpoint_is_cosigned_and_served_with_the_witness_line(
    ledger: LedgerStore, witness: Witness, cosigned: int
) -> None:
    application = ProjectionsApplication(ledger, [CHECKPOINT_KEY.public_key()])
    note = await application.checkpoint_note()
    text, signers = open_note(note, [witness_verifier(witness.vkey)])
    assert CheckpointText.parse(text).size == cosigned
    assert [s.name for s in signers] == ["trial-ledger.local/witness"]
    log_text, _ = open_note(note, [Verifier.of(ledger.origin, CHECKPOINT_KEY.public_key())])
    assert log_text == text
    lines = note.split("\n\n", 1)[1].splitlines()
    assert lines[0].startswith(f"\u2014 {ledger.origin} "), "the log's line comes first"
    history = await application.checkpoint_history(0, 100)
    assert all("trial-ledger.local/witness" in c["note"] for c in history["checkpoints"])
    assert await findings(ledger, witness) == []


async def test_a_rollback_is_named_from_the_kept_cosignatures(
    feed: Feed, ledger: LedgerStore, witness: Witness, cosigned: int
) -> None:
    await feed.as_superuser("DELETE FROM ledger_entries WHERE position > 20;\n"
                            "DELETE FROM checkpoints WHERE tree_size > 20;")  # fmt: skip
    plain = ProjectionsApplication(ledger, [CHECKPOINT_KEY.public_key()])
    assert (await plain.verify_unattributed()).ok, "without the witness it looks whole"
    assert await findings(ledger, witness, ask=False) == [(21, "rolled_back")]
    worker = cosigner(ledger, witness)
    async with httpx.AsyncClient() as client:
        with pytest.raises(WitnessError, match="rolled back"):
            await worker.step(client)  # the cosigner says so too, in /ready


async def test_a_rollback_with_its_cosignatures_deleted_is_named_by_the_witness(
    feed: Feed, ledger: LedgerStore, witness: Witness, cosigned: int
) -> None:
    await feed.as_superuser("DELETE FROM ledger_entries WHERE position > 20;\n"
                            "DELETE FROM checkpoints WHERE tree_size > 20;\n"
                            "DELETE FROM cosignatures WHERE tree_size > 20;")  # fmt: skip
    assert await findings(ledger, witness, ask=False) == []
    assert await findings(ledger, witness) == [(21, "rolled_back")]


async def test_deleted_checkpoints_are_named(
    feed: Feed, ledger: LedgerStore, witness: Witness, cosigned: int
) -> None:
    await feed.as_superuser("DELETE FROM checkpoints WHERE tree_size IN (10, 15);")
    assert await findings(ledger, witness) == [(10, "checkpoint_deleted"),
                                               (15, "checkpoint_deleted")]  # fmt: skip


async def test_a_tail_forged_before_the_newest_cosignature_is_named_with_its_range(
    feed: Feed, ledger: LedgerStore, witness: Witness, cosigned: int
) -> None:
    # entries 18.. replaced by copies of earlier ones, with well-formed leaves; the
    # checkpoints that covered them deleted, as a superuser hiding the forgery would
    forged = (
        "DELETE FROM ledger_entries WHERE position >= 18;\n"
        "DELETE FROM checkpoints WHERE tree_size >= 18;\n"
        "INSERT INTO ledger_entries SELECT position + 17, gen_random_uuid(), source, "
        "event_type, subject_id, record_id, record_version, occurred_at, recorded_at, "
        "ingested_at, topic, kafka_partition, kafka_offset, payload, '\\x00'::bytea "
        f"FROM ledger_entries WHERE position <= {cosigned - 17};\n"
        f"UPDATE ledger_entries SET leaf_hash = {LEAF} WHERE position >= 18;"
    )
    await feed.as_superuser(forged)
    plain = ProjectionsApplication(ledger, [CHECKPOINT_KEY.public_key()])
    assert (await plain.verify_unattributed()).ok, "without the witness it looks whole"
    found = await findings(ledger, witness)
    assert found[0] == (16, "cosigned_mismatch"), found  # 1..15 still as cosigned
    assert {(20, "checkpoint_deleted"), (25, "checkpoint_deleted")} <= set(found)


async def test_a_witness_that_is_down_never_stops_ingest_and_ready_says_so(
    feed: Feed, ledger: LedgerStore, witness: Witness
) -> None:
    await witness.stop()
    events = published_events(subjects=2)
    worker = cosigner(ledger, witness, stall_after=0.5)
    app = FastAPI()
    instrument(app, feed.settings, worker)
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    try:
        await feed.ingest_all(events)  # ingest goes on
        async with asgi_client(app, "projections") as client:

            async def unready() -> bool:
                response = await client.get("/ready")
                return response.status_code == 503 and "not cosigned" in response.json()[
                    "checks"
                ].get("witness", "")

            await eventually(unready, timeout=20, what="/ready naming the witness")
            metrics = (await client.get("/metrics")).text
        assert 'trialledger_witness_failing{service="projections"' in metrics
        assert 'witness_uncosigned_entries{service="projections",witness=' in metrics
        assert worker.error is not None and "did not answer" in worker.error
        await witness.start()  # back: the checkpoint is cosigned, and ready again
        await eventually(lambda: _ok(worker), timeout=20, what="the witness's return")
        assert max(await ledger.cosignatures()) == len(events)
    finally:
        stopping.set()
        await task


class Clock:
    """The cosigner's monotonic clock, moved by the test (its module's ``time``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_a_cosigner_that_keeps_up_under_a_steady_load_stays_ready(
    feed: Feed, ledger: LedgerStore, witness: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New checkpoints at every step (the ledger growing all the time) are not a witness
    falling behind: each step cosigns what it found, so none waits past the threshold."""
    clock = Clock()
    monkeypatch.setattr(witness_module, "time", clock)
    worker = cosigner(ledger, witness, stall_after=0.3)
    async with httpx.AsyncClient() as client:
        async for _ in each_subject_ingested(feed):
            await worker.step(client)  # it found new checkpoints, and cosigned them
            clock.now += 0.4  # longer than the threshold, between two steps
    assert await worker.problems() == {"witness": "ok"}
    assert max(await ledger.cosignatures()) == await ledger.size()


async def each_subject_ingested(feed: Feed) -> AsyncIterator[int]:
    """Three subjects' events published and ingested one subject after another (a
    checkpoint every 4 entries): the ledger's size after each."""
    trial, produced = published_events(subjects=3), 0
    for subject in ("S-001", "S-002", "S-003"):
        events = [e for e in trial if e.subject == subject]
        await feed.publish(events)
        produced += len(events)
        await feed.ingest_until(produced, checkpoint_every=4)
        yield produced


async def _ok(worker: Cosigner) -> bool:
    return (await worker.problems()) == {"witness": "ok"}


async def test_an_ingester_beside_a_cosigner_keeps_its_own_pace(
    feed: Feed, ledger: LedgerStore, witness: Witness
) -> None:
    """Cosigning runs apart from ingest: the ingester signs, the cosigner follows."""
    events = published_events(subjects=1)
    worker, stopping = cosigner(ledger, witness), asyncio.Event()
    ingester = feed.ingester(checkpoint_every=3)
    tasks = [asyncio.create_task(w.run(stopping)) for w in (worker, ingester)]
    try:
        await feed.publish(events)

        async def all_cosigned() -> bool:
            kept = await ledger.cosignatures()
            return bool(kept) and max(kept) == len(events)

        await eventually(all_cosigned, timeout=30, what="every checkpoint cosigned")
    finally:
        stopping.set()
        await asyncio.gather(*tasks)
    assert await findings(ledger, witness) == []


async def test_each_step_reads_the_new_entries_not_the_whole_ledger(
    feed: Feed, ledger: LedgerStore, witness: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint's consistency proof comes from the tree's frontier at the witness's
    size and the entries after it: a step reads what was appended since the last, so a
    large ledger does not cost each checkpoint a read and a hash of every entry."""
    read: list[tuple[int, int]] = []
    between = ledger.leaves_between

    async def recorded(start: int, end: int) -> list[bytes]:
        read.append((start, end))
        return await between(start, end)

    async def whole(batch: int = 0) -> AsyncIterator[list[bytes]]:
        raise AssertionError("the cosigner read every leaf of the ledger")
        yield []  # an async generator, as leaf_pages is

    afters: list[int] = []
    checkpoints = ledger.checkpoints

    async def checkpoints_after(after: int = 0) -> list[Checkpoint]:
        afters.append(after)
        return await checkpoints(after)

    monkeypatch.setattr(ledger, "leaves_between", recorded)
    worker = cosigner(ledger, witness)
    async with httpx.AsyncClient() as client:
        async for _ in each_subject_ingested(feed):
            with monkeypatch.context() as cosigning:  # the ingester reads them at its start
                cosigning.setattr(ledger, "leaf_pages", whole)
                cosigning.setattr(ledger, "checkpoints", checkpoints_after)
                await worker.step(client)
    produced = await ledger.size()
    assert max(await ledger.cosignatures()) == produced
    assert await findings(ledger, witness) == []
    # each entry read at most twice: for the proof that reaches past it, and to grow the
    # frontier over it (reading the whole ledger at each checkpoint: nine times here)
    assert sum(end - start for start, end in read) <= 2 * produced, read
    # and the checkpoints after the newest cosigned one, not all of them
    assert afters[0] == 0 and all(afters[1:]), afters
