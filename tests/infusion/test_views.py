"""The local enrollment view on the real PostgreSQL: built from enrollment events,
idempotent under redelivery, and with a dead letter for an unreadable record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.infusion.domain import Enrollment
from services.infusion.views import EnrollmentView
from shared.adapters.cohort import CohortView
from shared.contracts.adverse_events import SafetyReviewApprovedV1
from shared.kernel.envelope import CloudEvent
from shared.study import DEFAULT_STUDY_ID, record_key
from tests.projections.conftest import published_events
from tests.support import identity_event, opened, own_schema

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


SECOND = "SYN-CART-2"


def in_study(event: CloudEvent, study: str) -> CloudEvent:
    """``event`` as another study's relay would publish it (``studyid``)."""
    return event.model_copy(update={"studyid": study, "id": uuid.uuid4()})


async def test_the_same_subject_id_in_two_studies_is_two_rows(view: EnrollmentView) -> None:
    events = [e for e in published_events(subjects=1)]
    # SYN-CART-2's S-001 is decided eligible, not yet enrolled; the first study's enrolled
    until_eligible = [e for e in events if "SubjectEnrolled" not in e.type]
    await feed(view, [e.to_kafka_value() for e in events])
    await feed(view, [in_study(e, SECOND).to_kafka_value() for e in until_eligible])

    assert await view.enrollment("S-001") == Enrollment("enrolled", 1)
    assert await view.enrollment("S-001", DEFAULT_STUDY_ID) == Enrollment("enrolled", 1)
    assert await view.enrollment("S-001", SECOND) == Enrollment("eligible", None)
    assert await view.enrollment(record_key(SECOND, "S-001")) == Enrollment("eligible", None)
    # the first study's row is keyed as before studies were named; the other's by its key
    keys = {
        r["subject_id"] for r in await view.pool.fetch("SELECT subject_id FROM enrollment_view")
    }
    assert keys == {"S-001", "SYN-CART-2/S-001"}
    assert set(await view.all_facts()) == set(await view.all_facts(SECOND)) == {"S-001"}
    assert (await view.all_facts(SECOND))["S-001"]["status"] == "eligible"


def approval(study: str | None, level: int, review: int, sequence: int) -> CloudEvent:
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=review)
    event = identity_event(
        SafetyReviewApprovedV1.event_type, at,
        approved_level=level, cohort_size=3, review_number=review,
    )  # fmt: skip
    return event.model_copy(update={"studyid": study, "sequence": str(sequence)})


async def test_the_cohort_open_now_is_each_study_s(enrollment_settings_env: dict[str, str]) -> None:
    async with (
        own_schema("infusion", enrollment_settings_env) as settings,
        opened(CohortView(settings.database)) as cohorts,
    ):
        # records without studyid are the first study's: its row is "trial", as before
        for n, event in enumerate([approval(None, 2, 1, 1), approval(SECOND, 2, 1, 2),
                                   approval(SECOND, 3, 2, 3)]):  # fmt: skip
            assert await cohorts.apply(event.to_kafka_value(), "adverse_events", 0, n)

        first, second = await cohorts.opening(), await cohorts.opening(SECOND)
        assert (first.level, first.review_number) == (2, 1)
        assert (second.level, second.review_number) == (3, 2)
        rows = {r["fact"] for r in await cohorts.pool.fetch("SELECT fact FROM cohort_view")}
        assert rows == {"trial", "SYN-CART-2/trial"}
