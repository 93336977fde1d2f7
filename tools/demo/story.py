"""The demo trial as data (no I/O): who is screened, enrolled and dosed when, what
happens to them, and what is measured.

What happens is fixed here (``DESIGNS``, ``COHORTS``); the seed chooses only the values
(``clinical``), and every clinical time is a whole number of days before ``today`` at a
fixed hour, so the same seed gives the same trial and the same figures on every run,
whatever the time of day.

The calendar is the one the services demand: consent before screening, eligibility
before enrollment, leukapheresis, release, lymphodepletion 3-5 days before the infusion,
and no enrollment into a cohort before the previous cohort's 28-day DLT windows closed.
Ten subjects are screened; S-004 fails screening on platelets; nine are dosed, three at
level 1 (0/3 DLT: escalate), three at level 2 (1/3: expand), three more at level 2 (1/6:
escalate to level 3, where the trial's nine are complete). S-005's creatinine is
corrected before its eligibility decision; S-007 withdraws after month 3; S-010 flares.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from tools.demo import clinical, outcomes
from tools.demo.plan import (
    Cohort,
    Correction,
    Design,
    Enrollment,
    Story,
    SubjectPlan,
    Treatment,
    at,
)

SEED = 5030779
SITE = "ZJU-1"
CONSENT_FORM = "ICF v2.1"

DESIGNS = (
    Design("S-001", 1, 340, ("partial", "complete", "complete"), ("crs",)),
    Design("S-002", 1, 337, ("partial", "complete", "complete"), ("neutropenia",)),
    Design("S-003", 1, 334, ("stable", "partial", "complete"), ("crs",)),
    Design("S-004", None, 260),
    Design("S-005", 2, 268, ("partial", "complete", "complete"), ("crs", "infection"), True),
    Design("S-006", 2, 265, ("partial", "complete", "complete"), ("crs_dlt",)),
    Design("S-007", 2, 262, ("partial", "partial"), ("crs",), withdrawn_after=120),
    Design("S-008", 2, 196, ("stable", "stable", "partial"), ("crs_regraded",)),
    Design("S-009", 2, 193, ("complete", "complete", "complete"), ("nausea",)),
    Design("S-010", 2, 190, ("partial", "complete", "stable"), ("crs",), flare_after=149),
)


COHORTS = (
    Cohort(1, ("S-001", "S-002", "S-003"), dosed=3, dlts=0, decision="escalate", opens=2),
    Cohort(2, ("S-005", "S-006", "S-007"), dosed=3, dlts=1, decision="expand", opens=2),
    Cohort(2, ("S-008", "S-009", "S-010"), dosed=6, dlts=1, decision="escalate", opens=3),
)


def write_story(seed: int = SEED, today: date | None = None) -> Story:
    """The whole trial for ``seed``, dated back from ``today`` (UTC today by default)."""
    today = today or datetime.now(UTC).date()
    rng = random.Random(seed)  # noqa: S311  (reproducible clinical values, not secrets)
    return Story(seed, today, tuple(_subject(rng, d, today) for d in DESIGNS), COHORTS)


def _subject(rng: random.Random, design: Design, today: date) -> SubjectPlan:
    anchor = today - timedelta(days=design.days_ago)
    if design.level is None:
        return SubjectPlan(design.subject_id, None, _enrollment(rng, design, anchor))
    enrollment = _enrollment(rng, design, anchor)
    treatment = _treatment(rng, design, anchor)
    started = treatment.started_at
    return SubjectPlan(
        design.subject_id,
        design.level,
        enrollment,
        treatment,
        outcomes.safety_events(rng, design.events, started),
        *outcomes.follow_up(rng, design, started),
    )


def _enrollment(rng: random.Random, design: Design, infusion_day: date) -> Enrollment:
    def before(days: int, hour: int) -> datetime:
        return at(infusion_day - timedelta(days=days), hour)

    screened = before(42, 15)
    observations = clinical.screening(rng, screened.date(), platelets_fail=design.level is None)
    correction = None
    if design.corrected:
        true_value = observations["creatinine"]
        observations = {**observations, "creatinine": clinical.misplaced_decimal(true_value)}
        reason = (f"transcription error: decimal point misplaced; the laboratory report "
                  f"reads {true_value['value']} {true_value['unit']}")  # fmt: skip
        correction = Correction("screening.creatinine", true_value, reason)
    return Enrollment(
        registered_at=before(45, 9),
        consent_on=before(45, 9).date(),
        screened_at=screened,
        observations=observations,
        decided_at=before(40, 11),
        enrolled_at=None if design.level is None else before(33, 9),
        correction=correction,
    )


def _treatment(rng: random.Random, design: Design, infusion_day: date) -> Treatment:
    assert design.level is not None  # noqa: S101  (only dosed subjects are treated)
    weight = clinical.weight_kg(rng)
    cd19, bcma = clinical.lot_cells(rng, design.level, weight)
    lots = ((f"ZJU-{design.subject_id}-CD19", "CD19", cd19),
            (f"ZJU-{design.subject_id}-BCMA", "BCMA", bcma))  # fmt: skip
    released_on = (infusion_day - timedelta(days=9)).isoformat()
    releases = tuple(
        {"lot_id": lot_id, "product": product, **clinical.release(rng),
         "sterility_passed": True, "release_tests_passed": True, "released_on": released_on}
        for lot_id, product, _ in lots
    )  # fmt: skip
    regimen = {
        "agents": [{"agent": "fludarabine", "dose_mg_per_m2": "25", "days": 3},
                   {"agent": "cyclophosphamide", "dose_mg_per_m2": "250", "days": 3}],
        "started_on": (infusion_day - timedelta(days=5)).isoformat(),
        "completed_on": (infusion_day - timedelta(days=3)).isoformat(),
    }  # fmt: skip
    started = at(infusion_day, 10, rng.randint(0, 59))
    return Treatment(
        leukapheresis_on=infusion_day - timedelta(days=30),
        volume_ml=str(rng.randint(150, 250)),
        releases=releases,
        lymphodepletion=regimen,
        weight_kg=str(weight),
        cells=tuple((lot_id, cells) for lot_id, _, cells in lots),
        started_at=started,
        ended_at=started + timedelta(minutes=rng.randint(15, 30)),
    )
