"""What happens to a dosed subject after the infusion, as plan data (no I/O): adverse
events with every step of their records, visits with their signed responses and
autoantibody panels, CAR-T kinetics, a flare and a withdrawal.

Times are whole days from the infusion at fixed hours, so study days are the same on
every run; with the study's convention (the infusion's UTC date is day 0) the days after
the infusion are the study days.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from tools.demo import clinical
from tools.demo.plan import Design, Json, SafetyEvent, Sample, Visit, at

CRS = "Cytokine release syndrome"
MONTHS = (("month 1", 28), ("month 3", 89), ("month 6", 180))  # days after the infusion
BASELINE_DAYS_BEFORE = 7  # before lymphodepletion (5 to 3 days before the infusion)
NOT_SERIOUS: Json = {}  # every SDTM seriousness flag false (the API's defaults)


def _day(started: datetime, days: int, hour: int) -> datetime:
    return at(started.date() + timedelta(days=days), hour)


def _report(term: str, verbatim: str, onset: datetime) -> Json:
    return {"term": term, "verbatim": verbatim, "onset_at": onset.isoformat()}


def _recovered(onset: datetime, days: int) -> Json:
    """Resolved, recovered, ``days`` after the onset's date."""
    return {"ended_on": (onset.date() + timedelta(days=days)).isoformat(), "outcome": "recovered"}


def _no_dlt(reason: str) -> Json:
    return {"is_dlt": False, "criterion": None, "reason": reason}


def _crs(
    rng: random.Random,
    started: datetime,
    grade: int,
    dlt: Json | None = None,
    regrading: Json | None = None,
) -> SafetyEvent:
    onset = _day(started, rng.randint(1, 3), rng.randint(6, 22))
    components = clinical.crs_components(rng, grade)
    verbatim = (f"fever {components['temperature_c']} C; hypotension: "
                f"{components['hypotension']}; oxygen: {components['oxygen']}")  # fmt: skip
    return SafetyEvent(
        report=_report(CRS, verbatim, onset),
        grading={"crs": components},
        grade=grade,
        causality={"car_t": "definite", "lymphodepletion": "unlikely"},
        seriousness=NOT_SERIOUS,
        resolution=_recovered(onset, rng.randint(3, 7)),
        dlt=dlt or _no_dlt(f"ASTCT grade {grade} CRS, resolved with supportive care: no DLT"),
        regrading=regrading,
    )


def _crs_seeded(rng: random.Random, started: datetime) -> SafetyEvent:
    return _crs(rng, started, rng.choice([1, 1, 2]))


def _crs_dlt(rng: random.Random, started: datetime) -> SafetyEvent:
    dlt = {"is_dlt": True, "criterion": "crs_grade_3_not_improving_72h",
           "reason": "grade 3 CRS on one vasopressor, not improving within 72 h despite "
                     "tocilizumab and dexamethasone"}  # fmt: skip
    serious = {"hospitalisation": True, "medically_important": True}
    return replace(_crs(rng, started, 3, dlt), seriousness=serious)


def _crs_regraded(rng: random.Random, started: datetime) -> SafetyEvent:
    """Graded 1 on fever alone; regraded 2 when hypoxia needed low-flow oxygen."""
    worse = {**clinical.crs_components(rng, 1), "oxygen": "low_flow"}
    regrading = {"crs": worse, "reason": "hypoxia on day 2 needed oxygen by nasal cannula "
                                         "at 2 L/min"}  # fmt: skip
    return _crs(rng, started, 1, regrading=regrading)


def _graded(
    report: tuple[str, str, datetime],
    grade: int,
    causality: tuple[str, str],
    recovered_after: int,
    dlt: Json | None = None,
) -> SafetyEvent:
    """A non-serious event graded on CTCAE directly: ``report`` is (term, verbatim, onset),
    ``causality`` (CAR-T, lymphodepletion); recovered ``recovered_after`` days after onset."""
    onset = report[2]
    return SafetyEvent(
        report=_report(*report),
        grading={"grade": grade},
        grade=grade,
        causality={"car_t": causality[0], "lymphodepletion": causality[1]},
        seriousness=NOT_SERIOUS,
        resolution=_recovered(onset, recovered_after),
        dlt=dlt,
    )


def _neutropenia(rng: random.Random, started: datetime) -> SafetyEvent:
    onset = _day(started, rng.randint(6, 12), 8)
    grade = rng.choice([2, 3])
    return _graded(
        ("Neutrophil count decreased", f"ANC grade {grade}", onset),
        grade,
        ("possible", "probable"),
        rng.randint(7, 14),
        _no_dlt(f"grade {grade} neutropenia recovered before day 28: not a DLT"),
    )


def _infection(rng: random.Random, started: datetime) -> SafetyEvent:
    onset = _day(started, 59, 10)  # study day 59: treatment-emergent, after the DLT window
    report = ("Upper respiratory infection", "rhinovirus URTI", onset)
    return _graded(report, 2, ("possible", "unlikely"), rng.randint(7, 10))


def _nausea(rng: random.Random, started: datetime) -> SafetyEvent:
    onset = _day(started, -5, 15)  # during lymphodepletion: before the infusion, not a TEAE
    return _graded(
        ("Nausea", "nausea after cyclophosphamide", onset), 1, ("unrelated", "probable"), 2
    )


SAFETY: dict[str, Callable[[random.Random, datetime], SafetyEvent]] = {
    "crs": _crs_seeded,
    "crs_dlt": _crs_dlt,
    "crs_regraded": _crs_regraded,
    "neutropenia": _neutropenia,
    "infection": _infection,
    "nausea": _nausea,
}


def safety_events(
    rng: random.Random, kinds: tuple[str, ...], started: datetime
) -> tuple[SafetyEvent, ...]:
    return tuple(SAFETY[kind](rng, started) for kind in kinds)


def follow_up(
    rng: random.Random, design: Design, started: datetime
) -> tuple[tuple[Visit, ...], tuple[Sample, ...], Json | None, Json | None]:
    """Visits, kinetics samples, the flare and the withdrawal of one dosed subject;
    nothing is planned after a withdrawal."""
    last = design.withdrawn_after or MONTHS[-1][1]
    visits = _visits(rng, design.responses, started)
    kinetics = tuple(s for s in _kinetics(rng, started) if s.at <= _day(started, last, 23))
    flare = withdrawal = None
    if design.flare_after is not None:
        flare = {"kind": "flare", "description": "renal flare: new proteinuria 1.1 g/24 h",
                 "occurred_at": _day(started, design.flare_after, 14).isoformat()}  # fmt: skip
    if design.withdrawn_after is not None:
        when = _day(started, design.withdrawn_after, 10)
        withdrawal = {"reason": "moved to another province; withdrew consent to further visits",
                      "occurred_at": when.isoformat()}  # fmt: skip
    return visits, kinetics, flare, withdrawal


def _visits(rng: random.Random, responses: tuple[str, ...], started: datetime) -> tuple[Visit, ...]:
    items = clinical.baseline_items(rng)
    ana = rng.choice([320, 640, 1280])
    visits = [_visit(rng, "baseline", _day(started, -BASELINE_DAYS_BEFORE, 9), items, None, ana)]
    for index, ((label, days), response) in enumerate(zip(MONTHS, responses, strict=False)):
        items = clinical.visit_items(rng, response, items)
        titre = max(80, ana // 2 ** (index + 1))
        visits.append(_visit(rng, label, _day(started, days, 9), items, response, titre))
    return tuple(visits)


def _visit(
    rng: random.Random, label: str, when: datetime, items: frozenset[str],
    response: str | None, ana: int,
) -> Visit:  # fmt: skip
    pga, prednisone = clinical.global_assessment(rng, response)
    panel = tuple(clinical.autoantibodies(rng, items, ana))
    return Visit(label, when, items, pga, prednisone, response, panel)


def _kinetics(rng: random.Random, started: datetime) -> list[Sample]:
    blood = clinical.blood_kinetics(rng)
    marrow = clinical.marrow_kinetics(rng, blood)
    samples = [Sample(_day(started, d, 8), "peripheral_blood", v) for d, v in blood.items()]
    samples += [Sample(_day(started, d, 8), "bone_marrow", v) for d, v in marrow.items()]
    return sorted(samples, key=lambda s: (s.at, s.sample))
