"""Ingest from the real broker into the real ledger: at least once, exactly one entry
per event, dead letters for what cannot be an entry, and a signed, verifiable tree."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from services.projections.application import ProjectionsApplication
from services.projections.domain import checkpoint_valid, entry_leaf
from services.projections.ledger import LedgerStore, NewEntry
from tests.projections.conftest import CHECKPOINT_KEY, Feed, published_events, records_of
from tests.support import eventually

pytestmark = pytest.mark.integration


async def entries(ledger: LedgerStore) -> list[asyncpg.Record]:
    return list(await ledger.pool.fetch("SELECT * FROM ledger_entries ORDER BY position"))


async def test_every_event_becomes_one_entry_kept_exactly_as_published(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events()
    await feed.ingest_all(events)
    rows = await entries(ledger)
    assert [r["position"] for r in rows] == list(range(1, len(events) + 1))
    assert {bytes(r["payload"]) for r in rows} == {e.to_kafka_value() for e in events}
    assert all(
        bytes(r["leaf_hash"]) == entry_leaf(r["position"], bytes(r["payload"])) for r in rows
    )
    by_subject: dict[str, list[int]] = {}
    for row in rows:
        by_subject.setdefault(row["subject_id"], []).append(row["record_version"])
    assert all(versions == sorted(versions) for versions in by_subject.values())


async def test_duplicate_delivery_of_every_event_appends_each_once(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=2)
    await feed.publish(events + events)
    # every record read, the duplicates too: a duplicate would have been appended by now
    await feed.ingest_until(len(events), read_all=True)
    assert await ledger.size() == len(events)
    assert len({r["event_id"] for r in await entries(ledger)}) == len(events)


async def test_a_backlog_is_read_in_larger_batches_each_event_once_and_in_order(
    feed: Feed, ledger: LedgerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = published_events(subjects=2)
    await feed.publish(events + events[:5])  # a backlog, with redeliveries in it
    sizes: list[int] = []
    append = ledger.append

    async def counted(entries: Sequence[NewEntry], *rest: Any) -> list[tuple[int, bytes]]:
        sizes.append(len(entries))
        return await append(entries, *rest)

    monkeypatch.setattr(ledger, "append", counted)
    await feed.ingest_until(len(events), read_all=True, batch_size=2, backlog_batch_size=6)
    assert 2 < max(sizes) <= 6  # a full batch of 2 was followed by larger ones
    rows = await entries(ledger)
    assert [r["position"] for r in rows] == list(range(1, len(events) + 1))
    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in events)


@pytest.mark.part11("11.10(h)")
async def test_malformed_and_unknown_messages_go_to_dead_letters_and_ingest_goes_on(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=1)
    unknown = events[0].model_copy(update={"type": "Teleported.v1"})
    bad_payload = events[1].model_copy(update={"data": {**events[1].data, "version": "two"}})
    await feed.produce(
        [(b"x", b"not json at all"), *records_of([unknown, bad_payload, *events])],
    )
    await feed.ingest_until(len(events))
    reasons = [r["reason"] for r in await ledger.dead_letters()]
    assert len(reasons) == 3
    assert reasons[0].startswith("not a CloudEvents 1.0 structured event")
    assert "unknown event type 'Teleported.v1'" in reasons
    assert any(r.startswith("payload does not match") for r in reasons)
    assert await ledger.size() == len(events)


async def test_a_record_with_text_postgresql_cannot_store_is_a_dead_letter_not_a_stall(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=1)
    nul = events[0].model_copy(
        update={"subject": "S-\x00", "data": {**events[0].data, "subject_id": "S-\x00"}}
    )
    await feed.publish([nul, *events])
    await feed.ingest_until(len(events))
    (dead,) = [r["reason"] for r in await ledger.dead_letters()]
    assert dead.startswith("text PostgreSQL cannot store")
    assert await ledger.size() == len(events)


async def test_crash_between_database_commit_and_offset_commit_loses_and_doubles_nothing(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=2)
    await feed.publish(events)
    # The first ingester commits its batch to the database and "crashes" before any Kafka
    # offset commit: it is fed by a consumer that never commits.
    first = feed.ingester()
    first.epoch = await ledger.take_writer()
    consumer = AIOKafkaConsumer(
        feed.settings.topic,
        bootstrap_servers=feed.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        half = 0
        while half < len(events) // 2:
            batch = await consumer.getmany(timeout_ms=500, max_records=5)
            half += await first.ingest(batch)
    finally:
        await consumer.stop()
    assert 0 < await ledger.size() < len(events)
    await feed.publish(events[:3])  # and some redeliveries
    await feed.ingest_until(len(events), read_all=True)
    rows = await entries(ledger)
    assert len(rows) == len(events)
    assert sorted(r["event_id"] for r in rows) == sorted(e.id for e in events)


async def test_signed_checkpoint_covers_the_ledger_and_verifies(
    feed: Feed, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    events = published_events(subjects=2)
    await feed.ingest_all(events)
    checkpoints = await ledger.checkpoints()
    assert checkpoints[-1].size == len(events)
    keys = [CHECKPOINT_KEY.public_key()]
    assert all(checkpoint_valid(c, keys, ledger.origin) for c in checkpoints)
    report = await projections.verify_unattributed()
    assert report.ok, report.findings
    assert (report.entries, report.checkpoints_checked) == (len(events), len(checkpoints))


@pytest.mark.part11("11.10(c)")
async def test_the_writer_role_cannot_update_delete_or_truncate_the_ledger(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=1)
    await feed.ingest_all(events)
    for statement in (
        "UPDATE ledger_entries SET payload = 'x' WHERE position = 1",
        "DELETE FROM ledger_entries WHERE position = 1",
        "TRUNCATE ledger_entries",
        "DELETE FROM checkpoints",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ledger.pool.execute(statement)
    # and the owner is stopped by the triggers
    owner = await asyncpg.connect(feed.settings.database.dsn)
    try:
        await owner.execute(f'SET search_path TO "{feed.settings.database.schema}"')
        for statement in (
            "UPDATE ledger_entries SET payload = 'x' WHERE position = 1",
            "DELETE FROM ledger_entries",
            "TRUNCATE ledger_entries",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await owner.execute(statement)
    finally:
        await owner.close()
    assert await ledger.size() == len(events)


async def test_a_second_ingester_stands_by_and_the_tree_stays_whole(
    feed: Feed, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    events = published_events(subjects=2)
    first = feed.ingester(checkpoint_every=5)
    second = feed.ingester(checkpoint_every=5)
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(i.run(stopping)) for i in (first, second)]
    try:
        await feed.publish(events)

        async def all_in() -> bool:
            return await ledger.size() >= len(events)

        await eventually(all_in, what="every event in the ledger")
    finally:
        stopping.set()
        await asyncio.gather(*tasks)
    assert await ledger.size() == len(events)
    assert sorted([first.frontier.size, second.frontier.size]) == [0, len(events)]
    report = await projections.verify_unattributed()
    assert report.ok and report.checkpoints_checked >= 1, report.findings
