"""The clinical rules several services share (pure: no database, Kafka or HTTP).

- The open 3+3 cohort: the level the latest signed safety review opened, how many
  subjects it may dose, and when; before any review, level 1 for 3 subjects.
- The study calendar: what every service knows of a subject's infusion, and study days.

The local views that keep these facts (``shared.adapters.cohort``,
``shared.adapters.infusion_view``) read them from the topics with the functions here.

Study day 1 is the UTC calendar date of the infusion's start; the day before is day -1.
There is no day 0 (the CDISC convention), so that day counts on either side of the
infusion never meet. Days are counted on UTC dates, not the site's local dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.contracts.adverse_events import SafetyReviewApprovedV1
from shared.contracts.infusion import CarTInfusedV1
from shared.kernel.envelope import CloudEvent


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


# Before any review the first cohort is open: 3 subjects at level 1 (3+3).
FIRST_COHORT = CohortOpening(1, 3, datetime(1970, 1, 1, tzinfo=UTC), 0)


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


def cohort_opening(facts: dict[str, Any] | None) -> CohortOpening:
    """The open cohort from the latest approval's facts; the first cohort without one."""
    if facts is None:
        return FIRST_COHORT
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


def study_day(infused_at: datetime, at: datetime) -> int:
    """The study day of ``at`` (both aware): 1 on the infusion's UTC date, 2 the day
    after, -1 the day before. Never 0."""
    if infused_at.utcoffset() is None or at.utcoffset() is None:
        raise ValueError("study days are counted between aware datetimes")
    elapsed = (at.astimezone(UTC).date() - infused_at.astimezone(UTC).date()).days
    return elapsed + 1 if elapsed >= 0 else elapsed


def infusion_facts(event: CloudEvent) -> dict[str, Any] | None:
    """What an infusion tells of the subject: when it started, at which dose level."""
    if event.type != CarTInfusedV1.event_type:
        return None
    return {"infused_at": event.data["started_at"], "dose_level": event.data["dose_level"]}


def infused(facts: dict[str, Any]) -> Infused:
    return Infused(datetime.fromisoformat(facts["infused_at"]), int(facts["dose_level"]))
