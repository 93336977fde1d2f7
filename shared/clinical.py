"""The study calendar: what every service knows of a subject's infusion, and study days.

Study day 1 is the UTC calendar date of the infusion's start; the day before is day -1.
There is no day 0 (the CDISC convention), so that day counts on either side of the
infusion never meet. Days are counted on UTC dates, not the site's local dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Infused:
    """What a view of the infusion topic knows: when the subject was infused, at which
    dose level."""

    infused_at: datetime
    dose_level: int


def study_day(infused_at: datetime, at: datetime) -> int:
    """The study day of ``at`` (both aware): 1 on the infusion's UTC date, 2 the day
    after, -1 the day before. Never 0."""
    if infused_at.utcoffset() is None or at.utcoffset() is None:
        raise ValueError("study days are counted between aware datetimes")
    elapsed = (at.astimezone(UTC).date() - infused_at.astimezone(UTC).date()).days
    return elapsed + 1 if elapsed >= 0 else elapsed
