"""Study days and the DLT and TEAE windows at every edge, around one infusion, under the
study's convention (the infusion's date is day 0) and under the CDISC one (day 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.adverse_events.errors import InvalidTime
from services.adverse_events.windows import (
    RULE_VERSION,
    STUDY,
    dlt_window_closed,
    in_dlt_window,
    study_day,
    treatment_emergent,
    within_dlt_window,
)
from shared.clinical import DayConvention, Study

INFUSED_AT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
HANGZHOU = timezone(timedelta(hours=8))
CDISC = Study("NCT05030779", DayConvention.INFUSION_DAY_1)


def after(days: int, hour: int = 12, minute: int = 0) -> datetime:
    """A time ``days`` calendar days after the infusion's date (2026-03-10)."""
    return datetime(2026, 3, 10, hour, minute, tzinfo=UTC) + timedelta(days=days)


def test_the_study_counts_the_infusion_as_day_0() -> None:
    assert STUDY.convention is DayConvention.INFUSION_DAY_0
    assert (STUDY.dlt_window.first, STUDY.dlt_window.last) == (0, 28)
    assert (STUDY.teae_window.first, STUDY.teae_window.last) == (0, 90)
    assert RULE_VERSION == "NCT05030779/def-1/windows/2"


@pytest.mark.parametrize(
    ("at", "day_0", "day_1"),
    [
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), -2, -2),
        (datetime(2026, 3, 9, 23, 59, tzinfo=UTC), -1, -1),
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 0, 1),  # the infusion day, before it
        (INFUSED_AT, 0, 1),
        (datetime(2026, 3, 10, 23, 59, tzinfo=UTC), 0, 1),
        (datetime(2026, 3, 11, 0, 0, tzinfo=UTC), 1, 2),
        (datetime(2026, 4, 6, 23, 59, tzinfo=UTC), 27, 28),  # infusion + 27 days
        (datetime(2026, 4, 7, 0, 0, tzinfo=UTC), 28, 29),  # infusion + 28 days
        (datetime(2026, 4, 8, 0, 0, tzinfo=UTC), 29, 30),
        (datetime(2026, 6, 8, 0, 0, tzinfo=UTC), 90, 91),  # infusion + 90 days
        # 07:00 in Hangzhou on 11 March is 23:00 UTC on 10 March: UTC dates count
        (datetime(2026, 3, 11, 7, 0, tzinfo=HANGZHOU), 0, 1),
        (datetime(2026, 3, 11, 8, 0, tzinfo=HANGZHOU), 1, 2),
    ],
)
def test_study_day_counts_utc_dates_from_the_infusion_day_in_either_convention(
    at: datetime, day_0: int, day_1: int
) -> None:
    assert study_day(INFUSED_AT, at, STUDY) == day_0
    assert study_day(INFUSED_AT, at, CDISC) == day_1


@pytest.mark.parametrize("infusion_hour", [0, 7, 14, 23])
def test_the_cdisc_study_day_is_never_0(infusion_hour: int) -> None:
    infused_at = datetime(2026, 3, 10, infusion_hour, 30, tzinfo=UTC)
    hours = range(-96, 97)
    days = {study_day(infused_at, infused_at + timedelta(hours=h), CDISC) for h in hours}
    assert 0 not in days
    assert {-1, 1} <= days


def test_the_day_before_the_infusion_day_is_day_minus_1_in_either_convention() -> None:
    assert study_day(INFUSED_AT, after(-1), STUDY) == study_day(INFUSED_AT, after(-1), CDISC) == -1


@pytest.mark.parametrize(
    ("day", "day_0", "day_1"),
    [(-1, False, False), (0, True, False), (1, True, True), (28, True, True),
     (29, False, False), (90, False, False)],
)  # fmt: skip
def test_dlt_window_is_days_0_to_28_or_1_to_28(day: int, day_0: bool, day_1: bool) -> None:
    assert in_dlt_window(day, STUDY) is day_0
    assert in_dlt_window(day, CDISC) is day_1


@pytest.mark.parametrize(
    ("onset", "in_dlt", "emergent"),
    [
        (after(-1), False, False),  # before the infusion day
        (after(0, 8), False, False),  # the infusion day, before the infusion started
        (INFUSED_AT - timedelta(minutes=1), False, False),
        (INFUSED_AT, True, True),  # at the infusion's start
        (after(0, 18), True, True),
        (after(27, 23, 59), True, True),
        (after(28, 0), True, True),  # infusion + 28 days: day 28, the last of the window
        (after(28, 23, 59), True, True),
        (after(29, 0), False, True),  # day 29
        (after(90, 23, 59), False, True),  # day 90
        (after(91, 0), False, False),
    ],
)
def test_onset_edges_of_the_dlt_and_teae_windows_with_the_infusion_as_day_0(
    onset: datetime, in_dlt: bool, emergent: bool
) -> None:
    assert within_dlt_window(onset, INFUSED_AT, STUDY) is in_dlt
    assert treatment_emergent(onset, INFUSED_AT, STUDY) is emergent


@pytest.mark.parametrize(
    ("onset", "in_dlt", "emergent"),
    [
        (after(0, 8), False, False),  # the infusion day, before the infusion started
        (INFUSED_AT, True, True),
        (after(27, 23, 59), True, True),  # infusion + 27 days: day 28, the last
        (after(28, 0), False, True),  # infusion + 28 days: day 29
        (after(89, 23, 59), False, True),  # day 90
        (after(90, 0), False, False),  # day 91
    ],
)
def test_onset_edges_of_the_dlt_and_teae_windows_with_the_infusion_as_day_1(
    onset: datetime, in_dlt: bool, emergent: bool
) -> None:
    assert within_dlt_window(onset, INFUSED_AT, CDISC) is in_dlt
    assert treatment_emergent(onset, INFUSED_AT, CDISC) is emergent


@pytest.mark.parametrize(
    ("now", "closed"),
    [(INFUSED_AT, False), (after(28, 23, 59), False), (after(29, 0), True), (after(91), True)],
)
def test_dlt_window_closes_when_day_29_begins_infusion_plus_29_days(
    now: datetime, closed: bool
) -> None:
    assert dlt_window_closed(INFUSED_AT, now, STUDY) is closed


@pytest.mark.parametrize(("now", "closed"), [(after(27, 23, 59), False), (after(28, 0), True)])
def test_cdisc_dlt_window_closes_when_day_29_begins_infusion_plus_28_days(
    now: datetime, closed: bool
) -> None:
    assert dlt_window_closed(INFUSED_AT, now, CDISC) is closed


def test_refuses_a_naive_time() -> None:
    with pytest.raises(InvalidTime) as refused:
        study_day(INFUSED_AT, datetime(2026, 3, 10, 12, 0), STUDY)
    assert refused.value.code == "invalid_time"


def test_refuses_a_naive_infusion_time() -> None:
    with pytest.raises(InvalidTime):
        treatment_emergent(INFUSED_AT, datetime(2026, 3, 10, 12, 0), STUDY)
