"""The study calendar after the CAR-T infusion, and the protocol's safety windows.

Study days and the windows come from the study's definition (``shared.clinical.Study``,
read from ``studies/<study>/definition.json``): every function takes the calendar of the
study a command acts in (``study``, required: no silent fall-back to the first study's,
``shared.clinical.STUDY``). For NCT05030779 the infusion's UTC date
is day 0 (the convention of CAR-T protocols and of the published report), the DLT
window is days 0-28 (the protocol record's primary outcome, "up to 28 days after
infusion"), and an adverse event is treatment-emergent when its onset is on or after the
infusion and no later than day 90. Under the CDISC convention (the infusion's date is
day 1, no day 0) the same windows are days 1-28 and 1-90 and end a calendar date earlier.

Every report records the rule version that derived its study day and windows, and the
convention its study day is counted in: ``NCT05030779-windows/1`` counted day 1 on the
infusion's date (CDISC), ``NCT05030779-windows/2`` and ``NCT05030779/def-1/windows/2``
count day 0 there (docs/studies.md, Rule versions).

Days are counted on UTC dates, not the site's local dates: an event at 07:00 in
Hangzhou (UTC+8) falls on the previous UTC date.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.adverse_events.errors import InvalidTime
from shared.clinical import STUDY as STUDY
from shared.clinical import Study
from shared.study import StudyDefinition, study_definition

# The study, its definition's version and this module's revision: /2 counts in the
# study's convention, infusion = day 0 (NCT05030779-windows/1 counted day 1 there)
REVISION = 2
RULE_VERSION = study_definition().rule_version("windows", REVISION)


def rule_version(definition: StudyDefinition) -> str:
    """The version a report's study day and windows record under ``definition``."""
    return definition.rule_version("windows", REVISION)


def _utc(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidTime(f"{name} {value!r} is not an aware datetime", **{name: str(value)})
    return value.astimezone(UTC)


def study_day(infused_at: datetime, at: datetime, study: Study) -> int:
    """The study day of ``at`` in the study's convention (NCT05030779: 0 on the
    infusion's UTC date, 1 the day after, -1 the day before)."""
    return study.study_day(_utc("infused_at", infused_at), _utc("at", at))


def in_dlt_window(day: int, study: Study) -> bool:
    """Whether a study day lies in the DLT window (NCT05030779: days 0 to 28 included)."""
    return day in study.dlt_window


def within_dlt_window(onset: datetime, infused_at: datetime, study: Study) -> bool:
    """Whether an onset falls in the DLT window: at or after the infusion's start, and
    no later than its last day (NCT05030779: day 28, the infusion's date + 28 days). An
    onset earlier on the infusion day is not."""
    if _utc("onset", onset) < _utc("infused_at", infused_at):
        return False
    return in_dlt_window(study_day(infused_at, onset, study), study)


def treatment_emergent(onset: datetime, infused_at: datetime, study: Study) -> bool:
    """Whether an adverse event is treatment-emergent: onset at or after the infusion's
    start, up to and including the study's last TEAE day (NCT05030779: day 90). An onset
    earlier on the infusion day, before the infusion started, is not: it came before the
    treatment.

    Onset only: whether a pre-existing event that worsens after the infusion counts is
    decided where the worsening is recorded (as a new onset), not here.
    """
    if _utc("onset", onset) < _utc("infused_at", infused_at):
        return False
    return study_day(infused_at, onset, study) in study.teae_window


def dlt_window_closed(infused_at: datetime, now: datetime, study: Study) -> bool:
    """Whether the subject's DLT window has closed: once the day after its last day has
    begun (00:00 UTC of that date; NCT05030779: day 29, the infusion's date + 29 days)."""
    return study_day(infused_at, now, study) > study.dlt_window.last
