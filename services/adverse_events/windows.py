"""The study calendar after the CAR-T infusion, and the protocol's safety windows.

Study day 1 is the UTC calendar date of the infusion's start; the day before is day -1.
There is no day 0 (the CDISC convention), so that day counts on either side of the
infusion never meet. The DLT window is days 1-28 (the protocol record's primary
outcome); an adverse event is treatment-emergent when its onset is on or after the
infusion and no later than day 90.

Days are counted on UTC dates, not the site's local dates: an event at 07:00 in
Hangzhou (UTC+8) falls on the previous UTC date.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.adverse_events.errors import InvalidTime
from shared import clinical

RULE_VERSION = "NCT05030779-windows/1"

DLT_WINDOW = (1, 28)  # first and last study day, both included
TEAE_LAST_DAY = 90  # last study day of onset for a treatment-emergent adverse event


def _utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidTime(f"{name} {value!r} is not an aware datetime", **{name: str(value)})
    return value.astimezone(UTC)


def study_day(infused_at: datetime, at: datetime) -> int:
    """The study day of ``at``: 1 on the infusion's UTC date, 2 the day after, -1 the day
    before. Never 0 (``shared.clinical``)."""
    return clinical.study_day(_utc("infused_at", infused_at), _utc("at", at))


def in_dlt_window(day: int) -> bool:
    """Whether a study day lies in the DLT window, days 1 to 28 included."""
    first, last = DLT_WINDOW
    return first <= day <= last


def within_dlt_window(onset: datetime, infused_at: datetime) -> bool:
    """Whether an onset falls in the DLT window: at or after the infusion's start, and
    no later than study day 28. An onset earlier on the infusion day is not."""
    if _utc("onset", onset) < _utc("infused_at", infused_at):
        return False
    return in_dlt_window(study_day(infused_at, onset))


def treatment_emergent(onset: datetime, infused_at: datetime) -> bool:
    """Whether an adverse event is treatment-emergent: onset at or after the infusion's
    start, up to and including study day 90. An onset earlier on the infusion day (day 1,
    before the infusion started) is not: it came before the treatment.

    Onset only: whether a pre-existing event that worsens after the infusion counts is
    decided where the worsening is recorded (as a new onset), not here.
    """
    if _utc("onset", onset) < _utc("infused_at", infused_at):
        return False
    return study_day(infused_at, onset) <= TEAE_LAST_DAY


def dlt_window_closed(infused_at: datetime, now: datetime) -> bool:
    """Whether the subject's DLT window has closed: once study day 29 has begun (00:00
    UTC of that date)."""
    return study_day(infused_at, now) > DLT_WINDOW[1]
