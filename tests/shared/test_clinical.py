"""The study's definition: its day convention, its windows, and days between conventions."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.clinical import (
    NCT05030779,
    RECORDED_BEFORE_CONVENTIONS,
    DayConvention,
    Study,
    Window,
    convert_day,
)

INFUSED_AT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
CDISC = Study("NCT05030779", DayConvention.INFUSION_DAY_1)


def test_nct05030779_counts_the_infusion_as_day_0_by_default() -> None:
    assert NCT05030779.convention is DayConvention.INFUSION_DAY_0
    assert Study("any").convention is DayConvention.INFUSION_DAY_0


def test_nct05030779_windows_are_the_protocol_record_s() -> None:
    assert NCT05030779.dlt_window == Window(0, 28)
    assert NCT05030779.teae_window == Window(0, 90)
    assert NCT05030779.response_window == Window(0, 90)
    assert NCT05030779.disease_control_first_day == 28


def test_windows_start_on_the_convention_s_infusion_day() -> None:
    assert CDISC.dlt_window == Window(1, 28)
    assert CDISC.response_window == Window(1, 90)


def test_the_study_definition_cannot_be_changed_in_place() -> None:
    with pytest.raises(FrozenInstanceError):
        NCT05030779.convention = DayConvention.INFUSION_DAY_1  # type: ignore[misc]


def test_refuses_a_window_ending_before_the_infusion_day() -> None:
    with pytest.raises(ValueError, match="dlt_last_day"):
        Study("x", DayConvention.INFUSION_DAY_1, dlt_last_day=0)


@pytest.mark.parametrize(
    ("days_after", "day_0", "day_1"),
    [(-30, -30, -30), (-1, -1, -1), (0, 0, 1), (1, 1, 2), (28, 28, 29), (90, 90, 91)],
)
def test_study_day_of_a_date_in_either_convention(days_after: int, day_0: int, day_1: int) -> None:
    at = INFUSED_AT + timedelta(days=days_after)
    assert NCT05030779.study_day(INFUSED_AT, at) == day_0
    assert CDISC.study_day(INFUSED_AT, at) == day_1


def test_study_days_count_utc_dates() -> None:
    hangzhou = timezone(timedelta(hours=8))
    assert NCT05030779.study_day(INFUSED_AT, datetime(2026, 3, 11, 7, 0, tzinfo=hangzhou)) == 0
    assert NCT05030779.study_day(INFUSED_AT, datetime(2026, 3, 11, 8, 0, tzinfo=hangzhou)) == 1


def test_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        NCT05030779.study_day(INFUSED_AT, datetime(2026, 3, 10, 12, 0))


@pytest.mark.parametrize(
    ("study", "day", "expected"),
    [
        (NCT05030779, 0, date(2026, 3, 10)),
        (NCT05030779, 28, date(2026, 4, 7)),  # the DLT window's last day: infusion + 28
        (NCT05030779, -1, date(2026, 3, 9)),
        (CDISC, 1, date(2026, 3, 10)),
        (CDISC, 28, date(2026, 4, 6)),  # the CDISC window's last day: infusion + 27
        (CDISC, -1, date(2026, 3, 9)),
    ],
)
def test_date_of_a_study_day(study: Study, day: int, expected: date) -> None:
    assert study.date_of(INFUSED_AT, day) == expected
    assert study.study_day(INFUSED_AT, study.day_begins(INFUSED_AT, day)) == day


def test_there_is_no_cdisc_day_0() -> None:
    with pytest.raises(ValueError, match="no study day 0"):
        CDISC.date_of(INFUSED_AT, 0)


@pytest.mark.parametrize(
    ("day_1", "day_0"), [(-2, -2), (-1, -1), (1, 0), (2, 1), (29, 28), (91, 90)]
)
def test_a_day_converts_between_conventions_both_ways(day_1: int, day_0: int) -> None:
    assert convert_day(day_1, DayConvention.INFUSION_DAY_1, DayConvention.INFUSION_DAY_0) == day_0
    assert convert_day(day_0, DayConvention.INFUSION_DAY_0, DayConvention.INFUSION_DAY_1) == day_1
    assert NCT05030779.day_from(day_1, DayConvention.INFUSION_DAY_1) == day_0
    assert NCT05030779.day_from(day_0, DayConvention.INFUSION_DAY_0) == day_0


def test_days_recorded_without_a_convention_were_counted_cdisc() -> None:
    assert RECORDED_BEFORE_CONVENTIONS is DayConvention.INFUSION_DAY_1


@pytest.mark.parametrize(("day", "inside"), [(-1, False), (0, True), (28, True), (29, False)])
def test_a_window_includes_both_ends(day: int, inside: bool) -> None:
    assert (day in Window(0, 28)) is inside
    assert str(Window(0, 28)) == "days 0-28"
