"""The clinical rules several services share (pure: no database, Kafka or HTTP).

- The open 3+3 cohort: the level the latest signed safety review opened, how many
  subjects it may dose, and when; before any review, level 1 for 3 subjects.
- The study calendar: what every service knows of a subject's infusion, and study days.
- The study's calendar (``Study``, ``STUDY``, also named ``NCT05030779``), read from the
  study's definition file (``shared.study``): its study-day convention and its windows
  in study days. It is the one place that decides how days are counted; every
  rule that counts study days takes it from here.

The local views that keep these facts (``shared.adapters.cohort``,
``shared.adapters.infusion_view``) read them from the topics with the functions here.

Study days are counted on UTC calendar dates from the date of the infusion's start, not
on the site's local dates. Two conventions (``DayConvention``):

- ``INFUSION_DAY_0`` (the default, NCT05030779's): the infusion's date is day 0, the day
  after day 1, the day before day -1, as CAR-T protocols and the published report count
  ("up to 28 days after the infusion" ends on the infusion's date + 28 days, day 28).
- ``INFUSION_DAY_1`` (CDISC SDTM): the infusion's date is day 1 and there is no day 0;
  the day before is day -1. Every study day the services recorded before the study's
  definition named its convention was counted so.

A window is named by its first and last study day in the study's convention, so the
same "days 0-28" reads "days 1-28" in the other convention and ends a date earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from shared.contracts.adverse_events import SafetyReviewApprovedV1
from shared.contracts.infusion import CarTInfusedV1
from shared.kernel.envelope import CloudEvent
from shared.study import StudyDefinition, study_definition


@dataclass(frozen=True)
class CohortOpening:
    """The level a safety review opened, how many subjects it may dose, and when: when the
    approval was recorded (server time), and when the review took place (clinical time;
    no dose of the cohort may be given before it)."""

    level: int
    size: int
    opened_at: datetime  # recorded
    review_number: int
    reviewed_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)  # clinical


def first_cohort(definition: StudyDefinition) -> CohortOpening:
    """The cohort open before any review of a study: its first level, one cohort of its
    escalation design (3+3: 3 subjects at level 1)."""
    return CohortOpening(
        definition.dose_levels[0],
        definition.escalation.cohort_size,
        datetime(1970, 1, 1, tzinfo=UTC),
        0,
    )


# The first study's (``first_cohort`` of any other study's definition).
FIRST_COHORT = first_cohort(study_definition())


def approval_facts(event: CloudEvent) -> dict[str, Any] | None:
    """What a safety review's approval tells of the open cohort (other events: nothing)."""
    if event.type != SafetyReviewApprovedV1.event_type:
        return None
    return {
        "level": event.data["approved_level"],
        "size": event.data["cohort_size"],
        "opened_at": event.recordedtime.isoformat(),
        "review_number": event.data["review_number"],
        "reviewed_at": event.time.isoformat(),
    }


def cohort_opening(facts: dict[str, Any] | None, definition: StudyDefinition) -> CohortOpening:
    """The open cohort of the study of ``definition`` from the latest approval's facts;
    the study's first cohort without one."""
    if facts is None:
        return first_cohort(definition)
    return CohortOpening(
        int(facts["level"]),
        int(facts["size"]),
        datetime.fromisoformat(facts["opened_at"]),
        int(facts["review_number"]),
        # views filled before reviews had a clinical time: the recorded time stands for it
        datetime.fromisoformat(facts.get("reviewed_at", facts["opened_at"])),
    )


@dataclass(frozen=True)
class Infused:
    """What a view of the infusion topic knows: when the subject was infused, at which
    dose level."""

    infused_at: datetime
    dose_level: int


class DayConvention(StrEnum):
    """How study days are numbered around the infusion's UTC date."""

    INFUSION_DAY_0 = "infusion_day_0"  # infusion date = day 0 (CAR-T protocols, the report)
    INFUSION_DAY_1 = "infusion_day_1"  # infusion date = day 1, no day 0 (CDISC SDTM)

    @property
    def infusion_day(self) -> int:
        """The number of the infusion's date."""
        return 0 if self is DayConvention.INFUSION_DAY_0 else 1

    def day(self, days_after: int) -> int:
        """The study day ``days_after`` calendar days after the infusion's date (negative:
        before it)."""
        return days_after if days_after < 0 else days_after + self.infusion_day

    def days_after(self, day: int) -> int:
        """Calendar days from the infusion's date to study day ``day`` (the inverse)."""
        if self is DayConvention.INFUSION_DAY_1 and day == 0:
            raise ValueError("there is no study day 0 in the CDISC convention")
        return day if day < 0 else day - self.infusion_day


# What a study day recorded without a convention means: every one was counted so.
RECORDED_BEFORE_CONVENTIONS = DayConvention.INFUSION_DAY_1


def _days_after(infused_at: datetime, at: datetime) -> int:
    if infused_at.utcoffset() is None or at.utcoffset() is None:
        raise ValueError("study days are counted between aware datetimes")
    return (at.astimezone(UTC).date() - infused_at.astimezone(UTC).date()).days


def convert_day(day: int, recorded_in: DayConvention, wanted: DayConvention) -> int:
    """A study day recorded in one convention, numbered in another (the same date)."""
    return wanted.day(recorded_in.days_after(day))


@dataclass(frozen=True)
class Window:
    """Study days from ``first`` to ``last``, both included."""

    first: int
    last: int

    def __contains__(self, day: object) -> bool:
        return isinstance(day, int) and self.first <= day <= self.last

    def __str__(self) -> str:
        return f"days {self.first}-{self.last}"


@dataclass(frozen=True)
class Study:
    """A study's definition: its day convention and its windows, as last study days in
    that convention (pure configuration; no I/O).

    Windows that start at the infusion start on the convention's infusion day, so that
    "days 0-28" in one convention is "days 1-28" in the other, the same number of the last
    day, one calendar date apart (the protocol's "28 days after the infusion").
    """

    name: str
    convention: DayConvention = DayConvention.INFUSION_DAY_0
    dlt_last_day: int = 28  # DLT window: the infusion's day to this day
    teae_last_day: int = 90  # treatment-emergent: onset no later than this day
    response_last_day: int = 90  # objective response: "within 3 months of infusion"
    disease_control_first_day: int = 28  # disease control: first response from this day

    def __post_init__(self) -> None:
        infusion_day = self.convention.infusion_day
        for name in ("dlt_last_day", "teae_last_day", "response_last_day",
                     "disease_control_first_day"):  # fmt: skip
            if getattr(self, name) < infusion_day:
                raise ValueError(f"{self.name}: {name} is before the infusion's day")

    @classmethod
    def of(cls, definition: StudyDefinition) -> Study:
        """The calendar of a study's definition (its ``calendar`` section)."""
        calendar = definition.calendar
        return cls(
            definition.study_id,
            DayConvention(calendar.day_convention),
            dlt_last_day=calendar.dlt_last_day,
            teae_last_day=calendar.teae_last_day,
            response_last_day=calendar.response_last_day,
            disease_control_first_day=calendar.disease_control_first_day,
        )

    @property
    def infusion_day(self) -> int:
        return self.convention.infusion_day

    @property
    def dlt_window(self) -> Window:
        return Window(self.infusion_day, self.dlt_last_day)

    @property
    def teae_window(self) -> Window:
        return Window(self.infusion_day, self.teae_last_day)

    @property
    def response_window(self) -> Window:
        return Window(self.infusion_day, self.response_last_day)

    def study_day(self, infused_at: datetime, at: datetime) -> int:
        """The study day of ``at`` (both aware) in the study's convention, on UTC dates."""
        return self.convention.day(_days_after(infused_at, at))

    def date_of(self, infused_at: datetime, day: int) -> date:
        """The UTC date of study day ``day``."""
        return infused_at.astimezone(UTC).date() + timedelta(days=self.convention.days_after(day))

    def day_begins(self, infused_at: datetime, day: int) -> datetime:
        """00:00 UTC of study day ``day``."""
        return datetime.combine(self.date_of(infused_at, day), time(0), tzinfo=UTC)

    def day_from(self, day: int, recorded_in: DayConvention) -> int:
        """A study day recorded in ``recorded_in``, numbered in the study's convention."""
        return convert_day(day, recorded_in, self.convention)


# The study the services run, from its definition file (studies/<id>/definition.json,
# docs/studies.md). NCT05030779: the infusion is day 0, the DLT window days 0-28 (the
# protocol record's primary outcome, "up to 28 days after infusion"), TEAE onset to day
# 90, response within 3 months (day 90), disease control from day 28. Assumption until
# the protocol's own text says otherwise: docs/adverse_events.md, Study days.
STUDY = Study.of(study_definition())
NCT05030779 = STUDY  # the name callers used before studies were data


def infusion_facts(event: CloudEvent) -> dict[str, Any] | None:
    """What an infusion tells of the subject: when it started, at which dose level."""
    if event.type != CarTInfusedV1.event_type:
        return None
    return {"infused_at": event.data["started_at"], "dose_level": event.data["dose_level"]}


def infused(facts: dict[str, Any]) -> Infused:
    return Infused(datetime.fromisoformat(facts["infused_at"]), int(facts["dose_level"]))
