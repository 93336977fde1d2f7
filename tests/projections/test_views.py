"""Views derived from the ledger: rebuildable, "as of" any moment, NULL-safe old and new
values, signatures shown with what they sign, and every auditor query recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.projections.application import ProjectionsApplication, TrailFilter
from services.projections.ledger import LedgerStore
from services.projections.recorded import CorruptEntry, Recorded
from services.projections.views import PreparedBatch, ViewStore
from shared.clinical import STUDY
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Role
from shared.web.auth import Forbidden
from tests.projections.conftest import Feed, published_events
from tests.support import principal

pytestmark = pytest.mark.integration
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")


async def snapshot(ledger: LedgerStore) -> tuple[list[Any], list[Any]]:
    trail = await ledger.pool.fetch("SELECT * FROM audit_trail ORDER BY position, seq")
    states = await ledger.pool.fetch("SELECT * FROM subject_states ORDER BY subject_id")
    return [dict(r) for r in trail], [dict(r) for r in states]


async def test_a_rebuild_gives_identical_views(
    filled: int, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    before = await snapshot(ledger)
    assert before[0] and len(before[1]) == 2
    assert await projections.rebuild(AUDITOR) == filled
    assert await snapshot(ledger) == before


async def test_views_built_an_entry_at_a_time_equal_views_built_in_one_batch(
    filled: int, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    """A signature set on rows written in an earlier batch, and one set on rows of its own
    batch, give the same trail; so do states carried from batch to batch."""
    in_one_batch = await snapshot(ledger)
    for table in ("audit_trail", "subject_states", "view_positions"):
        await ledger.pool.execute(f"DELETE FROM {table}")
    assert await projections.views.catch_up(batch=1) == filled
    assert await snapshot(ledger) == in_one_batch
    assert any(row["signed_by"] for row in in_one_batch[0])


async def test_two_catch_ups_at_once_apply_each_entry_once(
    filled: int, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    """The ingester's catch-up and an auditor's rebuild may run at once: each batch is
    applied under the views' lock from the position read under it, never twice."""
    in_one_batch = await snapshot(ledger)
    for table in ("audit_trail", "subject_states", "view_positions"):
        await ledger.pool.execute(f"DELETE FROM {table}")
    views = projections.views
    applied = await asyncio.gather(*(views.catch_up(batch=1) for _ in range(3)))
    assert sum(applied) == filled
    assert await snapshot(ledger) == in_one_batch


class ReadingWhileWriting(ViewStore):
    """Views whose every batch's write, but the last, waits until the entries after it are
    being read: a catch-up that reads only once a write has ended never gets there."""

    def __init__(self, ledger: LedgerStore, entries: int) -> None:
        super().__init__(ledger.pool, ledger.schema, STUDY)
        self.entries, self.overlaps = entries, 0
        self.read_after: set[int] = set()
        self._read = asyncio.Condition()

    async def _entries(self, after: int, batch: int) -> Sequence[tuple[int, Recorded]]:
        async with self._read:
            self.read_after.add(after)
            self._read.notify_all()
        return await super()._entries(after, batch)

    async def _write(self, batch: PreparedBatch) -> bool:
        written = await super()._write(batch)
        if batch.last < self.entries:
            async with self._read:
                next_read = self._read.wait_for(lambda: batch.last in self.read_after)
                await asyncio.wait_for(next_read, 30)
            self.overlaps += 1
        return written


async def test_the_next_batch_is_read_while_the_one_before_is_written(
    filled: int, ledger: LedgerStore
) -> None:
    """The catch-up reads and prepares a batch while the database writes the one before,
    so neither waits for the other; the views are the same as ever."""
    in_one_batch = await snapshot(ledger)
    for table in ("audit_trail", "subject_states", "view_positions"):
        await ledger.pool.execute(f"DELETE FROM {table}")
    views = ReadingWhileWriting(ledger, filled)
    assert await views.catch_up(batch=2) == filled
    assert views.overlaps == (filled - 1) // 2
    assert await snapshot(ledger) == in_one_batch


async def test_an_entry_that_is_not_an_event_stops_the_views_at_its_batch(
    filled: int, feed: Feed, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    """Possible only by tampering (``verify`` finds it): the views refuse it by its
    position, keep every batch before it, and never skip it."""
    for table in ("audit_trail", "subject_states", "view_positions"):
        await ledger.pool.execute(f"DELETE FROM {table}")
    await feed.as_superuser(
        "UPDATE ledger_entries SET payload = convert_to('{\"id\": 1}', 'UTF8') WHERE position = 3;"
    )
    with pytest.raises(CorruptEntry, match=r"^ledger entry 3: not an event"):
        await projections.views.catch_up(batch=2)
    assert await projections.views.position() == 2
    assert await ledger.pool.fetchval("SELECT max(position) FROM audit_trail") == 2


async def test_current_state_of_a_subject(filled: int, projections: ProjectionsApplication) -> None:
    state = await projections.subject(AUDITOR, "S-001")
    assert state is not None
    assert (state["status"], state["dose_level"], state["site_id"]) == ("enrolled", 1, "ZJU-1")
    assert state["eligibility"]["eligible"] is True
    assert [s["meaning"] for s in state["signatures"]] == ["responsibility", "approval"]
    assert state["corrections"] == 2


async def test_as_of_a_position_or_time_equals_the_state_recorded_then(
    filled: int, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    rows = await ledger.pool.fetch(
        "SELECT position, recorded_at, event_type FROM ledger_entries "
        "WHERE subject_id = 'S-001' ORDER BY position"
    )
    statuses = []
    for row in rows:
        by_position = await projections.subject(AUDITOR, "S-001", position=row["position"])
        by_time = await projections.subject(AUDITOR, "S-001", as_of=row["recorded_at"])
        assert by_position == by_time
        assert by_position is not None and by_position["position"] == row["position"]
        statuses.append(by_position["status"])
    assert statuses == [
        "registered", "consented", "consented", "screened", "screened", "screened",
        "eligible", "eligible", "enrolled",
    ]  # fmt: skip
    now = await projections.subject(AUDITOR, "S-001")
    view = await ledger.pool.fetchval("SELECT state FROM subject_states WHERE subject_id = 'S-001'")
    assert now == json.loads(view)


@pytest.mark.part11("11.10(e)")
async def test_corrections_show_old_and_new_values_to_and_from_empty(
    filled: int, projections: ProjectionsApplication
) -> None:
    trail = await projections.trail(
        AUDITOR, TrailFilter(subject_id="S-001", event_type="ValueCorrected.v1")
    )
    assert [(r["field"], r["reason"]) for r in trail] == [
        ("screening.systemic_steroids", "found in notes"),
        ("screening.systemic_steroids", "wrong patient"),
    ]
    first, second = ((json.loads(r["old_value"]), json.loads(r["new_value"])) for r in trail)
    assert (first[0]["value"], first[1]["value"]) == (None, "2026-10-01")  # from empty
    assert (second[0]["value"], second[1]["value"]) == ("2026-10-01", None)  # to empty
    assert trail[0]["actor_name"] == "Dr Lin Wei" and trail[0]["actor_role"] == "investigator"


@pytest.mark.part11("11.10(e)")
async def test_a_new_value_has_no_old_value_which_differs_from_an_empty_one(
    filled: int, projections: ProjectionsApplication
) -> None:
    trail = await projections.trail(
        AUDITOR, TrailFilter(subject_id="S-001", event_type="SubjectRegistered.v1")
    )
    assert [(r["field"], r["old_value"], r["new_value"]) for r in trail] == [
        ("site_id", None, '"ZJU-1"')
    ]


@pytest.mark.part11("11.50")
async def test_signed_records_show_their_signature_in_the_trail(
    filled: int, projections: ProjectionsApplication
) -> None:
    [consent] = await projections.trail(
        AUDITOR, TrailFilter(subject_id="S-001", event_type="ConsentSigned.v1", limit=1)
    )
    assert (consent["signer_name"], consent["signature_meaning"]) == (
        "Dr Lin Wei",
        "responsibility",
    )
    assert consent["signed_at"] is not None


async def test_signatures_of_both_schemes_show_in_the_views(
    feed: Feed, projections: ProjectionsApplication
) -> None:
    # S-901 was signed before scheme v2 (RecordSigned.v1, as published then); S-001 after
    stored = Path(__file__).parents[1] / "shared/fixtures/stored-signature-v1.json"
    old = [
        CloudEvent.from_kafka_value(text.encode())
        for text in json.loads(stored.read_text())["published"]
    ]
    new = published_events(subjects=1)
    assert {e.type for e in old + new} >= {"RecordSigned.v1", "RecordSigned.v2"}
    await feed.publish(old + new)
    await feed.ingest_until(len(old + new))
    for subject, signer in (("S-901", "林伟 Lin Wei"), ("S-001", "Dr Lin Wei")):
        state = await projections.subject(AUDITOR, subject)
        assert state is not None
        assert [s["printed_name"] for s in state["signatures"]][:1] == [signer]
        [consent] = await projections.trail(
            AUDITOR, TrailFilter(subject_id=subject, event_type="ConsentSigned.v1", limit=1)
        )
        assert (consent["signer_name"], consent["signature_meaning"]) == (signer, "responsibility")
        assert consent["signed_at"] is not None


@pytest.mark.part11("11.10(g)", "review")
async def test_every_query_is_recorded_and_others_are_refused_and_recorded(
    filled: int, ledger: LedgerStore, projections: ProjectionsApplication
) -> None:
    await projections.subject(AUDITOR, "S-002")
    investigator = principal(Role.INVESTIGATOR, user_id="inv.lin")
    with pytest.raises(Forbidden):
        await projections.export(investigator)
    rows = await ledger.pool.fetch(
        "SELECT user_id, action, outcome, parameters FROM auditor_activity ORDER BY id"
    )
    assert [(r["user_id"], r["action"], r["outcome"]) for r in rows[-2:]] == [
        ("aud.kim", "subject", "allowed"),
        ("inv.lin", "export", "denied"),
    ]
    assert json.loads(rows[-2]["parameters"])["subject_id"] == "S-002"
