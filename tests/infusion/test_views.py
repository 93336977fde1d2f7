"""The local enrollment view on the real PostgreSQL: built from enrollment events,
idempotent under redelivery, and with a dead letter for an unreadable record."""

from __future__ import annotations

import pytest

from services.infusion.domain import Enrollment
from services.infusion.views import EnrollmentView
from tests.projections.conftest import published_events

pytestmark = pytest.mark.integration


async def feed(view: EnrollmentView, values: list[bytes]) -> None:
    for offset, value in enumerate(values):
        await view.apply(value, "enrollment", 0, offset)


async def test_the_view_follows_a_subject_to_enrollment(view: EnrollmentView) -> None:
    events = [e for e in published_events(subjects=2) if e.subject == "S-001"]
    await feed(view, [e.to_kafka_value() for e in events])
    assert await view.enrollment("S-001") == Enrollment("enrolled", 1)
    assert await view.enrollment("S-404") == Enrollment("unknown", None)


async def test_redelivery_and_old_events_change_nothing(view: EnrollmentView) -> None:
    events = [e for e in published_events(subjects=1)]
    values = [e.to_kafka_value() for e in events]
    await feed(view, values)
    before = await view.pool.fetchrow("SELECT * FROM enrollment_view WHERE subject_id = 'S-001'")
    await feed(view, values + values[:3])  # everything again, then some old ones
    after = await view.pool.fetchrow("SELECT * FROM enrollment_view WHERE subject_id = 'S-001'")
    assert after == before


async def test_an_unreadable_record_goes_to_the_dead_letters(view: EnrollmentView) -> None:
    assert await view.apply(b"{not json", "enrollment", 0, 7) is False
    [row] = await view.pool.fetch("SELECT kafka_offset, reason FROM enrollment_view_dead_letters")
    assert row["kafka_offset"] == 7 and row["reason"].startswith("unreadable")


async def test_a_record_with_text_the_table_cannot_hold_is_a_dead_letter_not_a_retry(
    view: EnrollmentView,
) -> None:
    event = published_events(subjects=1)[0]
    nul = event.model_copy(
        update={"subject": "S-\x00", "data": {**event.data, "subject_id": "S-\x00"}}
    )
    assert await view.apply(nul.to_kafka_value(), "enrollment", 0, 3) is False
    [row] = await view.pool.fetch("SELECT kafka_offset, reason FROM enrollment_view_dead_letters")
    assert row["kafka_offset"] == 3 and row["reason"].startswith("text PostgreSQL cannot store")
