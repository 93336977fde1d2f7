"""The demo trial's plan as plain data: what the story decided, as request bodies and
clinical times, ready to send (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from shared.clinical import NCT05030779

Json = dict[str, Any]


@dataclass(frozen=True)
class Design:
    """What happens to one subject (the seed chooses only the values)."""

    subject_id: str
    level: int | None  # None: fails screening
    days_ago: int  # the infusion (a screen failure: the day it would have been), before today
    responses: tuple[str, ...] = ()  # derived at months 1, 3 and 6
    events: tuple[str, ...] = ()  # adverse events, by kind (``safety_events``)
    corrected: bool = False  # a screening value is mistyped, then corrected
    withdrawn_after: int | None = None  # days after the infusion
    flare_after: int | None = None


@dataclass(frozen=True)
class Cohort:
    """Three subjects dosed at ``level``; once their DLT windows close the 3+3 state is
    (``dosed``, ``dlts``, ``decision``) and a signed safety review opens ``opens``."""

    level: int
    subject_ids: tuple[str, ...]
    dosed: int
    dlts: int
    decision: str
    opens: int


@dataclass(frozen=True)
class Correction:
    field: str
    new_value: Json
    reason: str


@dataclass(frozen=True)
class Enrollment:
    registered_at: datetime
    consent_on: date
    screened_at: datetime
    observations: dict[str, Json]  # as first recorded (a mistyped value included)
    decided_at: datetime
    enrolled_at: datetime | None
    correction: Correction | None = None


@dataclass(frozen=True)
class Treatment:
    leukapheresis_on: date
    volume_ml: str
    releases: tuple[Json, ...]  # one body per lot
    lymphodepletion: Json
    weight_kg: str
    cells: tuple[tuple[str, int], ...]  # (lot id, viable CAR+ cells infused)
    started_at: datetime
    ended_at: datetime


@dataclass(frozen=True)
class SafetyEvent:
    """An adverse event and every step of its record, as request bodies."""

    report: Json
    grading: Json  # {"crs": components} or {"grade": n}
    grade: int  # what the grading gives
    causality: Json
    seriousness: Json
    resolution: Json
    regrading: Json | None = None  # components and reason
    dlt: Json | None = None  # the adjudication; None: onset outside the DLT window


@dataclass(frozen=True)
class Visit:
    label: str
    at: datetime
    items: frozenset[str]
    pga: str
    prednisone: str
    response: str | None  # the response claimed and signed; None at baseline
    panel: tuple[Json, ...]  # autoantibodies and complement of the same draw


@dataclass(frozen=True)
class Sample:
    at: datetime
    sample: str  # peripheral_blood | bone_marrow
    value: int  # copies/ug gDNA


@dataclass(frozen=True)
class SubjectPlan:
    subject_id: str
    level: int | None
    enrollment: Enrollment
    treatment: Treatment | None = None
    safety: tuple[SafetyEvent, ...] = ()
    visits: tuple[Visit, ...] = ()
    kinetics: tuple[Sample, ...] = ()
    flare: Json | None = None
    withdrawal: Json | None = None


@dataclass(frozen=True)
class Story:
    seed: int
    today: date
    subjects: tuple[SubjectPlan, ...]
    cohorts: tuple[Cohort, ...]

    def plan(self, subject_id: str) -> SubjectPlan:
        return next(s for s in self.subjects if s.subject_id == subject_id)

    def review_time(self, cohort: Cohort) -> datetime:
        """When the cohort's safety review meets (clinical time): 09:00 on the first day
        after every DLT window of the cohort has closed (the day after the window's last day,
        NCT05030779: day 29 of its last dose, the infusion's date + 29 days)."""
        treated = [self.plan(sid).treatment for sid in cohort.subject_ids]
        last = max(t.started_at for t in treated if t is not None)
        closed = NCT05030779.date_of(last, NCT05030779.dlt_window.last + 1)
        return at(closed, 9)

    @property
    def screen_failures(self) -> list[str]:
        return [s.subject_id for s in self.subjects if s.level is None]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)
