"""C2SP checkpoints on the real PostgreSQL and Kafka: signed at least every N entries
(inside a batch too, and after a crash), each a signed note naming the ledger's origin,
verifiable with any key the ledger was ever signed with; a deleted one is a gap."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.projections import merkle
from services.projections.__main__ import known_contracts
from services.projections.api import create_app
from services.projections.application import ProjectionsApplication
from services.projections.domain import Trust
from services.projections.ingest import Ingester, IngestOptions
from services.projections.integrity import check_ledger
from services.projections.ledger import LedgerStore
from services.projections.notes import CheckpointText, Verifier, open_note
from tests.projections.conftest import CHECKPOINT_KEY, Feed, published_events
from tests.projections.test_proofs import AUDITOR, nodes
from tests.support import VERIFIER, asgi_client, eventually

pytestmark = pytest.mark.integration


async def sizes(ledger: LedgerStore) -> list[int]:
    return [c.size for c in await ledger.checkpoints()]


async def filled_every(feed: Feed, every: int) -> int:
    events = published_events(subjects=3)  # 27 events, ingested in one batch
    await feed.ingest_all(events, checkpoint_every=every, batch_size=500)
    return len(events)


async def test_a_checkpoint_every_n_entries_even_within_one_batch(
    feed: Feed, ledger: LedgerStore
) -> None:
    count = await filled_every(feed, every=5)
    signed = await sizes(ledger)
    assert signed[-1] == count
    assert all(b - a <= 5 for a, b in zip([0, *signed], signed, strict=False)), signed
    verifier = Verifier.of(ledger.origin, CHECKPOINT_KEY.public_key())
    for checkpoint in await ledger.checkpoints():
        assert checkpoint.note is not None
        text, _ = open_note(checkpoint.note, [verifier])
        assert CheckpointText.parse(text) == CheckpointText(
            ledger.origin, checkpoint.size, checkpoint.root
        )


@pytest.mark.part11("11.10(a)")
async def test_a_deleted_checkpoint_is_a_gap_verify_names(feed: Feed, ledger: LedgerStore) -> None:
    await filled_every(feed, every=5)
    await feed.as_superuser("DELETE FROM checkpoints WHERE tree_size = 10;")
    application = ProjectionsApplication(ledger, [CHECKPOINT_KEY.public_key()], max_gap=5)
    report = await application.verify_unattributed()
    assert [(f.position, f.kind) for f in report.findings] == [(6, "checkpoint_gap")]


async def test_a_rotated_key_keeps_the_checkpoints_it_signed_verifiable(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=2)
    await feed.publish(events[:9])
    await feed.ingest_until(9)  # signed with the first key
    new_key = Ed25519PrivateKey.generate()
    await feed.publish(events[9:])
    rotated = Ingester(
        ledger, feed.settings.kafka_bootstrap, [feed.settings.topic],
        known_contracts(), new_key, IngestOptions(poll_ms=200),
        older_keys=[CHECKPOINT_KEY.public_key()],
    )  # fmt: skip
    await ingest_with(rotated, ledger, len(events))
    both = [new_key.public_key(), CHECKPOINT_KEY.public_key()]
    assert (await check_ledger(ledger, Trust(both, ledger.origin), None)).ok
    only_new = await check_ledger(ledger, Trust([new_key.public_key()], ledger.origin), None)
    assert [f.kind for f in only_new.findings] == ["bad_signature"]
    other_origin = await check_ledger(ledger, Trust(both, "trial-ledger.local/x"), None)
    assert [f.kind for f in other_origin.findings] == ["bad_signature"]


async def test_checkpoints_a_crash_left_out_are_signed_when_a_writer_takes_over(
    feed: Feed, ledger: LedgerStore
) -> None:
    await filled_every(feed, every=1000)  # one checkpoint, at 27
    await feed.as_superuser("DELETE FROM checkpoints;")  # as if never signed
    options = IngestOptions(checkpoint_every=10)
    topics = [feed.settings.topic]
    bootstrap = feed.settings.kafka_bootstrap
    writer = Ingester(ledger, bootstrap, topics, known_contracts(), CHECKPOINT_KEY, options)
    writer.epoch = await ledger.take_writer()
    await writer.take_over()
    assert await sizes(ledger) == [10, 20]


async def test_the_checkpoint_and_its_history_are_public_and_verify_with_their_vkeys(
    feed: Feed, ledger: LedgerStore
) -> None:
    await filled_every(feed, every=10)
    application = ProjectionsApplication(ledger, [CHECKPOINT_KEY.public_key()])
    async with asgi_client(create_app(application, VERIFIER), "projections") as client:
        note = (await client.get("/checkpoint")).text
        history = (await client.get("/checkpoints", params={"after": 5})).json()
    verifiers = [Verifier.parse(vkey) for vkey in history["vkeys"]]
    latest = CheckpointText.parse(open_note(note, verifiers)[0])
    assert latest.origin == history["origin"] == ledger.origin
    after_5 = [size for size in await sizes(ledger) if size > 5]
    assert [c["size"] for c in history["checkpoints"]] == after_5
    assert history["checkpoints"][-1]["size"] == latest.size


async def test_a_consistency_proof_between_two_older_sizes(
    feed: Feed, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    await filled_every(feed, every=5)
    proof = await projections.consistency_proof(AUDITOR, old_size=7, new_size=15)
    (at_15,) = [c for c in await ledger.checkpoints() if c.size == 15]
    assert merkle.verify_consistency(
        7, 15, bytes.fromhex(proof["old_root"]), at_15.root, nodes(proof)
    )


async def ingest_with(ingester: Ingester, ledger: LedgerStore, size: int) -> None:
    """Run ``ingester`` until the ledger holds ``size`` entries, then sign."""
    stopping = asyncio.Event()
    task = asyncio.create_task(ingester.run(stopping))

    async def grown() -> bool:
        return await ledger.size() >= size

    try:
        await eventually(grown, what=f"{size} entries in the ledger")
    finally:
        stopping.set()
        await task
    await ingester.checkpoint()
