"""The ledger's one writer: fenced by an epoch, so a writer that lost its lock cannot
append or sign again; and checked by itself before it signs, so that it never signs over
a row it did not append (a superuser's forged tail is found at its position)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.projections.application import ProjectionsApplication
from services.projections.domain import sign_checkpoint
from services.projections.ingest import ForeignEntries
from services.projections.ledger import Fenced, LedgerStore
from services.projections.merkle import Frontier
from shared.kernel.settings import ServiceSettings
from tests.projections.conftest import CHECKPOINT_KEY, Feed, published_events

pytestmark = pytest.mark.integration


def forged_tail(position: int) -> str:
    """A copy of entry 1 appended at ``position`` with a recomputed, consistent leaf hash:
    what a superuser who knows the leaf formula would write."""
    leaf = ("sha256('\\x00'::bytea || convert_to('trial-ledger/entry/v1' || chr(10) || "
            f"'{position}' || chr(10), 'UTF8') || payload)")  # fmt: skip
    return (
        "INSERT INTO ledger_entries SELECT " + str(position) + ", gen_random_uuid(), source, "
        "event_type, subject_id, record_id, record_version + 100, occurred_at, recorded_at, "
        "ingested_at, topic, kafka_partition, kafka_offset + 1000, payload, "
        f"{leaf} FROM ledger_entries WHERE position = 1;"
    )


async def test_a_writer_whose_epoch_was_taken_can_neither_append_nor_sign(
    ledger: LedgerStore,
) -> None:
    old = await ledger.take_writer()
    await ledger.take_writer()  # a standby took over
    with pytest.raises(Fenced):
        await ledger.append([], [], {("t", 0): 1}, old)
    empty = Frontier().root()
    checkpoint = sign_checkpoint(CHECKPOINT_KEY, ledger.origin, 0, empty, datetime.now(UTC))
    with pytest.raises(Fenced):
        await ledger.add_checkpoints([checkpoint], old)


async def test_a_writer_that_lost_its_lock_is_fenced_and_the_tree_stays_whole(
    feed: Feed, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    events = published_events(subjects=2)
    await feed.publish(events[:10])
    old = await feed.ingest_until(10)
    await ledger.take_writer()  # the old writer's lock was lost; another writer took over
    await feed.publish(events[10:])
    with pytest.raises(Fenced):
        await old.ingest(await read_all(feed.settings))
    assert await ledger.size() == 10  # it appended nothing
    await feed.ingest_until(len(events))
    report = await projections.verify_unattributed()
    assert report.ok and report.entries == len(events), report.findings


async def test_the_self_check_finds_a_forged_tail_and_refuses_to_sign_over_it(
    feed: Feed, ledger: LedgerStore
) -> None:
    events = published_events(subjects=1)
    await feed.ingest_all(events)  # signs a checkpoint
    forged = len(events) + 1
    await feed.as_superuser(forged_tail(forged))
    restarted = feed.ingester()
    await restarted.self_check()
    assert restarted.untrusted is not None
    assert f"position {forged} (unanchored)" in restarted.untrusted
    assert (await restarted.problems())["ingest"] == restarted.untrusted
    application = ProjectionsApplication(
        ledger, [CHECKPOINT_KEY.public_key()], bootstrap=feed.settings.kafka_bootstrap
    )
    report = await application.verify_unattributed()
    assert [(f.position, f.kind) for f in report.findings] == [(forged, "unanchored")]
    restarted.epoch = await ledger.take_writer()
    await restarted.take_over()  # a session's start, as run() does it
    before = len(await ledger.checkpoints())
    await restarted.checkpoint()
    assert len(await ledger.checkpoints()) == before, "it signed over a forged row"


async def test_a_row_written_behind_a_running_writer_ends_its_session(feed: Feed) -> None:
    events = published_events(subjects=2)
    await feed.publish(events[:5])
    writer = await feed.ingest_until(5)
    await feed.as_superuser(forged_tail(6))
    await feed.publish(events[5:6])
    with pytest.raises(ForeignEntries):
        await writer.ingest(await read_all(feed.settings))
    assert await writer.ledger.size() == 6, "it appended behind the forged row"


async def read_all(settings: ServiceSettings) -> dict[TopicPartition, list[Any]]:
    """Every record of the test's topic, as one batch."""
    consumer = AIOKafkaConsumer(
        settings.topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch: dict[TopicPartition, list[Any]] = {}
        while fetched := await consumer.getmany(timeout_ms=1000):
            for partition, records in fetched.items():
                batch.setdefault(partition, []).extend(records)
        return batch
    finally:
        await consumer.stop()
