"""Study days and the DLT and TEAE windows at every edge, around one infusion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.adverse_events.errors import InvalidTime
from services.adverse_events.windows import (
    DLT_WINDOW,
    TEAE_LAST_DAY,
    dlt_window_closed,
    in_dlt_window,
    study_day,
    treatment_emergent,
    within_dlt_window,
)

INFUSED_AT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # study day 1
HANGZHOU = timezone(timedelta(hours=8))


def on_day(day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A time on a study day (day 1 = 2026-03-10, no day 0)."""
    offset = day - 1 if day > 0 else day
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC) + timedelta(days=offset)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), -2),
        (datetime(2026, 3, 9, 23, 59, tzinfo=UTC), -1),
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 1),  # the infusion day, before the infusion
        (INFUSED_AT, 1),
        (datetime(2026, 3, 10, 23, 59, tzinfo=UTC), 1),
        (datetime(2026, 3, 11, 0, 0, tzinfo=UTC), 2),
        (datetime(2026, 4, 6, 23, 59, tzinfo=UTC), 28),
        (datetime(2026, 4, 7, 0, 0, tzinfo=UTC), 29),
        (datetime(2026, 6, 7, 23, 59, tzinfo=UTC), 90),
        (datetime(2026, 6, 8, 0, 0, tzinfo=UTC), 91),
        # 07:00 in Hangzhou on 11 March is 23:00 UTC on 10 March: UTC dates count
        (datetime(2026, 3, 11, 7, 0, tzinfo=HANGZHOU), 1),
        (datetime(2026, 3, 11, 8, 0, tzinfo=HANGZHOU), 2),
    ],
)
def test_study_day_counts_utc_dates_from_the_infusion_day(at: datetime, expected: int) -> None:
    assert study_day(INFUSED_AT, at) == expected


@pytest.mark.parametrize("infusion_hour", [0, 7, 14, 23])
def test_study_day_is_never_0(infusion_hour: int) -> None:
    infused_at = datetime(2026, 3, 10, infusion_hour, 30, tzinfo=UTC)
    days = {study_day(infused_at, infused_at + timedelta(hours=h)) for h in range(-96, 97)}
    assert 0 not in days
    assert {-1, 1} <= days


def test_the_day_before_the_infusion_day_is_day_minus_1() -> None:
    assert study_day(INFUSED_AT, on_day(1) - timedelta(days=1)) == -1


@pytest.mark.parametrize(
    ("day", "expected"),
    [(-1, False), (0, False), (1, True), (28, True), (29, False), (90, False)],
)
def test_dlt_window_is_days_1_to_28(day: int, expected: bool) -> None:
    assert in_dlt_window(day) is expected


def test_windows_are_the_protocol_record_s() -> None:
    assert DLT_WINDOW == (1, 28)
    assert TEAE_LAST_DAY == 90


@pytest.mark.parametrize(
    ("onset", "in_dlt", "emergent"),
    [
        (on_day(-1), False, False),  # before the infusion day
        (on_day(1, 8), False, False),  # the infusion day, before the infusion started
        (INFUSED_AT - timedelta(minutes=1), False, False),
        (INFUSED_AT, True, True),  # at the infusion's start
        (on_day(1, 18), True, True),
        (on_day(28, 23, 59), True, True),
        (on_day(29, 0), False, True),
        (on_day(90, 23, 59), False, True),
        (on_day(91, 0), False, False),
    ],
)
def test_onset_edges_of_the_dlt_and_teae_windows(
    onset: datetime, in_dlt: bool, emergent: bool
) -> None:
    assert within_dlt_window(onset, INFUSED_AT) is in_dlt
    assert treatment_emergent(onset, INFUSED_AT) is emergent


@pytest.mark.parametrize(
    ("now", "closed"),
    [
        (INFUSED_AT, False),
        (on_day(28, 23, 59), False),
        (on_day(29, 0), True),
        (on_day(91), True),
    ],
)
def test_dlt_window_closes_when_study_day_29_begins(now: datetime, closed: bool) -> None:
    assert dlt_window_closed(INFUSED_AT, now) is closed


def test_refuses_a_naive_time() -> None:
    with pytest.raises(InvalidTime) as refused:
        study_day(INFUSED_AT, datetime(2026, 3, 10, 12, 0))
    assert refused.value.code == "invalid_time"


def test_refuses_a_naive_infusion_time() -> None:
    with pytest.raises(InvalidTime):
        treatment_emergent(INFUSED_AT, datetime(2026, 3, 10, 12, 0))
