"""The trial's endpoints, computed from ledger entries alone (no I/O).

Give it the entries up to any position or time and it gives the figures as of then;
``TrialHistory`` folds them, and is advanced entry by entry, so that the figures of the
ledger now come from state kept between requests rather than from a replay of it all.
Every figure lists the subjects and the ledger entries (position, event id) it was
computed from. Definitions and their assumptions: docs/endpoints.md.

Study days, windows, the named visits and the definitions' version are those of the
study whose ledger the entries are (``EndpointRules``, from its definition: ``shared.study``;
every function takes the calendar, none falls back to the first study's; NCT05030779: the
infusion's date is day 0, SYN-CART-2 reads its week-8 visit rather than week 12).
The v1 events carry their study days counted the CDISC way (the infusion's date is day 1,
their contracts' meaning); they are renumbered here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from statistics import median
from typing import Any

from services.projections.recorded import Recorded
from services.projections.survival import KaplanMeier, Observation, kaplan_meier
from shared.clinical import STUDY as STUDY
from shared.clinical import DayConvention, Study
from shared.contracts.adverse_events import (
    AdverseEventGradedV1,
    AdverseEventRegradedV1,
    AdverseEventReportedV1,
    DltAdjudicatedV1,
    SafetyReviewApprovedV1,
)
from shared.contracts.assessments import (
    AutoantibodyMeasuredV1,
    CarTKineticsMeasuredV1,
    DiseaseActivityAssessedV1,
    ProgressionReportedV1,
    RemissionAssessedV1,
)
from shared.contracts.enrollment import SubjectDiedV1
from shared.contracts.infusion import CarTInfusedV1
from shared.study import DEFAULT_STUDY_ID, StudyDefinition, study_definition

# /2: study days in the study's convention, infusion = day 0 (/1 counted it as day 1, so
# its windows ended, and disease control began, a calendar day earlier); CRS and ICANS
# by worst grade, rates at a named visit, SLEDAI-2K change, time to first remission
# (the study and its definition's version named since studies are data)
REVISION = 2
PUBLISHED_STUDY_DAYS = DayConvention.INFUSION_DAY_1  # what the v1 contracts' study_day counts
REMISSION = ("complete", "partial")

# The scales the adverse-events service records with a grade (its ``grading.Scale``; this
# service reads the published value, it does not import that service).
CRS_SCALE = "ASTCT-CRS"
ICANS_SCALE = "ASTCT-ICANS"
GRADES = (0, 1, 2, 3, 4, 5)


@dataclass(frozen=True)
class NamedVisit:
    """A protocol visit: its target, as time after the infusion, and its window in whole
    days either side. The target's study day is the study day (``STUDY``'s convention) of
    the infusion plus ``after_infusion``, so the window follows the study-day convention."""

    after_infusion: timedelta
    days_before: int
    days_after: int

    def window(self, infused_at: datetime, calendar: Study) -> tuple[int, int, int]:
        """(first, target, last) study day of the window for a subject infused then, in
        the ``calendar``'s convention."""
        target = calendar.study_day(infused_at, infused_at + self.after_infusion)
        return target - self.days_before, target, target + self.days_after


@dataclass(frozen=True)
class EndpointRules:
    """What a study's definition says the endpoints are read by: its calendar (study days,
    the response window's last day, disease control's first day), its named visits, and
    the version of the definitions, naming the study (``<study>/def-<n>/endpoints/2``)."""

    calendar: Study
    visits: Mapping[str, NamedVisit]
    version: str

    @classmethod
    def of(cls, definition: StudyDefinition) -> EndpointRules:
        # The visits at which rates are read: the definition's "visits" (docs/endpoints.md;
        # NCT05030779: week 12, Feng et al.'s (Nat Med 2025) time point for DORIS and
        # LLDAS, with a window of +/- 7 days that is ours)
        visits = {
            visit.name: NamedVisit(
                after_infusion=timedelta(days=visit.days_after_infusion),
                days_before=visit.window_days_before,
                days_after=visit.window_days_after,
            )
            for visit in definition.visits
        }
        return cls(Study.of(definition), visits, definition.rule_version("endpoints", REVISION))


@cache
def endpoint_rules(study_id: str) -> EndpointRules:
    """The endpoint rules of ``study_id``'s ledger, from its definition, read once."""
    return EndpointRules.of(study_definition(study_id))


# The first study's version and named visits, by the names they had before studies were
# data (docs/endpoints.md); every function takes its ledger's ``EndpointRules``.
ENDPOINTS_VERSION = endpoint_rules(DEFAULT_STUDY_ID).version
VISITS = endpoint_rules(DEFAULT_STUDY_ID).visits


@dataclass(frozen=True)
class Ref:
    """A ledger entry a figure rests on."""

    position: int
    event_id: str
    type: str

    @classmethod
    def of(cls, position: int, event: Recorded) -> Ref:
        return cls(position, str(event.id), event.type)


@dataclass(frozen=True)
class Dated:
    at: datetime
    ref: Ref
    study_day: int | None = None
    value: Any = None


@dataclass
class Course:
    """What the ledger says of one subject, for the endpoints."""

    subject_id: str
    calendar: Study  # the calendar of the subject's study
    infusion: Dated | None = None
    dose_level: int | None = None
    death: Dated | None = None
    teae: list[Ref] = field(default_factory=list)
    dlt: dict[str, tuple[bool, Ref]] = field(default_factory=dict)  # latest per AE record
    responses: list[Dated] = field(default_factory=list)  # value: the category
    progressions: list[Dated] = field(default_factory=list)
    assessments: list[Dated] = field(default_factory=list)  # visits and responses
    antibodies: list[Dated] = field(default_factory=list)  # value: a result dict
    kinetics: list[Dated] = field(default_factory=list)  # value: the event data
    grades: dict[str, Dated] = field(default_factory=dict)  # latest per AE; value: (scale, grade)
    visits: list[Dated] = field(default_factory=list)  # value: SLEDAI-2K
    remissions: list[Dated] = field(default_factory=list)  # value: the response's data

    @property
    def infused(self) -> Dated:
        if self.infusion is None:
            raise ValueError(f"subject {self.subject_id} has no infusion in the ledger")
        return self.infusion

    def days_to(self, at: datetime) -> int:
        """Whole days from the infusion's UTC date to ``at``'s."""
        return (at.date() - self.infused.at.date()).days

    def study_day_of(self, at: datetime) -> int:
        """The study day of ``at`` in the study's convention."""
        return self.calendar.study_day(self.infused.at, at)


def study_day(data: dict[str, Any], calendar: Study) -> int | None:
    """An event's published study day, numbered in the ``calendar``'s convention."""
    day = data.get("study_day")
    return None if day is None else calendar.day_from(int(day), PUBLISHED_STUDY_DAYS)


# The entries that make the escalation's timeline: each dose and each review that opened one.
MILESTONES = (CarTInfusedV1.event_type, SafetyReviewApprovedV1.event_type)


@dataclass
class TrialHistory:
    """Every subject's course and the escalation's milestones, folded from ledger entries
    in position order up to ``position``, by the ``rules`` of the ledger's study. Advancing
    it by the entries after ``position`` gives what a replay of all of them gives (tested),
    at the cost of the new ones only."""

    rules: EndpointRules
    position: int = 0
    courses: dict[str, Course] = field(default_factory=dict)
    milestones: list[tuple[int, Recorded]] = field(default_factory=list)

    @classmethod
    def of(cls, entries: Iterable[tuple[int, Recorded]], rules: EndpointRules) -> TrialHistory:
        history = cls(rules=rules)
        history.advance(entries)
        return history

    def advance(self, entries: Iterable[tuple[int, Recorded]]) -> None:
        for position, event in entries:
            if position <= self.position:
                raise ValueError(f"entry {position} is not after {self.position}: "
                                 "the ledger is folded once, in position order")  # fmt: skip
            self.position = position
            if event.type in MILESTONES:
                self.milestones.append((position, event))
            if event.subject is not None:
                course = self.courses.setdefault(
                    event.subject, Course(event.subject, self.rules.calendar)
                )
                _apply(course, position, event)

    @property
    def population(self) -> list[Course]:
        """The analysis population: every subject infused, by subject id."""
        return infused(self.courses)


def courses(entries: Iterable[tuple[int, Recorded]], rules: EndpointRules) -> dict[str, Course]:
    """Every subject's course from ledger entries in position order (a ledger of ``rules``'s
    study)."""
    return TrialHistory.of(entries, rules).courses


def _apply(course: Course, position: int, event: Recorded) -> None:
    data, ref = event.data, Ref.of(position, event)
    dated = Dated(event.time, ref, study_day(data, course.calendar))
    match event.type:
        case CarTInfusedV1.event_type:
            course.infusion = Dated(datetime.fromisoformat(data["started_at"]), ref)
            course.dose_level = int(data["dose_level"])
        case SubjectDiedV1.event_type:
            course.death = dated
        case AdverseEventReportedV1.event_type if data["treatment_emergent"]:
            course.teae.append(ref)
        case DltAdjudicatedV1.event_type:
            course.dlt[str(data["record_id"])] = (bool(data["is_dlt"]), ref)
        case AdverseEventGradedV1.event_type | AdverseEventRegradedV1.event_type:
            grade = (str(data["scale"]), int(data["grade"]))
            course.grades[str(data["record_id"])] = Dated(event.time, ref, None, grade)
        case DiseaseActivityAssessedV1.event_type:
            course.assessments.append(dated)
            course.visits.append(Dated(event.time, ref, dated.study_day, int(data["sledai_2k"])))
        case RemissionAssessedV1.event_type:
            course.responses.append(Dated(event.time, ref, dated.study_day, data["response"]))
            course.remissions.append(Dated(event.time, ref, dated.study_day, data))
            course.assessments.append(dated)
            if data["response"] == "progression":
                course.progressions.append(dated)
        case ProgressionReportedV1.event_type:
            course.progressions.append(dated)
        case AutoantibodyMeasuredV1.event_type:
            course.antibodies.extend(Dated(event.time, ref, dated.study_day, r)
                                     for r in data["results"])  # fmt: skip
        case CarTKineticsMeasuredV1.event_type:
            course.kinetics.append(Dated(event.time, ref, dated.study_day, data))


def _refs(refs: Iterable[Ref]) -> list[dict[str, Any]]:
    return [r.__dict__ for r in sorted(set(refs), key=lambda r: r.position)]


def _proportion(
    numerator: list[Course], denominator: list[Course], refs: Iterable[Ref]
) -> dict[str, Any]:
    n, d = len(numerator), len(denominator)
    return {
        "numerator": n,
        "denominator": d,
        "rate": None if d == 0 else str((Decimal(n) / Decimal(d)).quantize(Decimal("0.001"))),
        "subjects": sorted(c.subject_id for c in numerator),
        "population": sorted(c.subject_id for c in denominator),
        "events": _refs(refs),
    }


def _infusion_refs(population: list[Course]) -> list[Ref]:
    return [c.infusion.ref for c in population if c.infusion is not None]


def dlt_rates(population: list[Course]) -> dict[str, Any]:
    """Subjects with a DLT (latest adjudication of any of their adverse events) over the
    subjects infused, per dose level."""
    levels = sorted({c.dose_level for c in population if c.dose_level is not None})
    rates = {}
    for level in levels:
        infused = [c for c in population if c.dose_level == level]
        with_dlt = [c for c in infused if any(is_dlt for is_dlt, _ in c.dlt.values())]
        refs = [ref for c in infused for _, ref in c.dlt.values()] + _infusion_refs(infused)
        rates[str(level)] = _proportion(with_dlt, infused, refs)
    return rates


def teae_incidence(population: list[Course]) -> dict[str, Any]:
    with_teae = [c for c in population if c.teae]
    refs = [r for c in with_teae for r in c.teae] + _infusion_refs(population)
    return _proportion(with_teae, population, refs)


def objective_response(population: list[Course], calendar: Study) -> dict[str, Any]:
    """Complete or partial remission at any response assessment up to the study's last
    response day (NCT05030779: day 90, "within 3 months"; SYN-CART-2: day 84), named in
    the figure."""
    responders, refs = [], _infusion_refs(population)
    last_day = calendar.response_last_day
    for course in population:
        early = [r for r in course.responses if (r.study_day or 0) <= last_day]
        hits = [r for r in early if r.value in REMISSION]
        refs += [r.ref for r in hits]
        if hits:
            responders.append(course)
    return {**_proportion(responders, population, refs), "last_study_day": last_day}


def disease_control(population: list[Course], calendar: Study) -> dict[str, Any]:
    """Complete, partial or stable at the first response assessment on or after the
    study's first disease-control day (NCT05030779: day 28; SYN-CART-2: day 21), named in
    the figure."""
    controlled, refs = [], _infusion_refs(population)
    first_day = calendar.disease_control_first_day
    for course in population:
        first = next((r for r in course.responses if (r.study_day or 0) >= first_day), None)
        if first is not None:
            refs.append(first.ref)
            if first.value != "progression":
                controlled.append(course)
    return {**_proportion(controlled, population, refs), "first_study_day": first_day}


def _end(course: Course, since: datetime) -> tuple[Dated | None, Dated | None]:
    """The first progression or death after ``since``, and the last assessment (where
    follow-up is censored otherwise)."""
    ends = [d for d in (*course.progressions, course.death) if d is not None and d.at >= since]
    last = max(course.assessments, key=lambda d: d.at, default=None)
    return min(ends, key=lambda d: d.at, default=None), last


def _observation(course: Course, since: Dated, end: Dated | None, last: Dated | None) -> tuple[
    Observation, list[Ref]
]:  # fmt: skip
    if end is not None:
        return Observation(course.subject_id, course.days_to(end.at) - course.days_to(since.at),
                           True), [since.ref, end.ref]  # fmt: skip
    censor = last if last is not None and last.at >= since.at else since
    return Observation(course.subject_id, course.days_to(censor.at) - course.days_to(since.at),
                       False), [since.ref, censor.ref]  # fmt: skip


def _survival_figure(observations: list[tuple[Observation, list[Ref]]]) -> dict[str, Any]:
    estimate: KaplanMeier = kaplan_meier(o for o, _ in observations)
    return {
        "median_days": estimate.median,
        "steps": [
            {"day": s.time, "at_risk": s.at_risk, "events": s.events, "censored": s.censored,
             "survival": str(round(float(s.survival), 4)), "exact": str(s.survival)}
            for s in estimate.steps
        ],
        "subjects": [
            {"subject_id": o.subject_id, "days": o.time, "event": o.event}
            for o, _ in sorted(observations, key=lambda x: x[0].subject_id)
        ],
        "events": _refs(r for _, refs in observations for r in refs),
    }  # fmt: skip


def progression_free_survival(population: list[Course]) -> dict[str, Any]:
    """From the infusion to progression (reported, or a response of progression) or
    death, whichever first; censored at the last assessment."""
    observations = []
    for course in population:
        end, last = _end(course, course.infused.at)
        observations.append(_observation(course, course.infused, end, last))
    return _survival_figure(observations)


def overall_survival(population: list[Course]) -> dict[str, Any]:
    """From the infusion to death; censored at the last assessment."""
    observations = []
    for course in population:
        last = max(course.assessments, key=lambda d: d.at, default=None)
        observations.append(_observation(course, course.infused, course.death, last))
    return _survival_figure(observations)


def duration_of_remission(population: list[Course]) -> dict[str, Any]:
    """From the first complete or partial remission to progression or death; censored at
    the last assessment. Only subjects who had a remission."""
    observations = []
    for course in population:
        first = next((r for r in course.responses if r.value in REMISSION), None)
        if first is not None:
            end, last = _end(course, first.at)
            observations.append(_observation(course, first, end, last))
    return _survival_figure(observations)


def incidence_by_maximum_grade(population: list[Course], scale: str) -> dict[str, Any]:
    """Subjects by the worst grade (0-5) of any adverse event graded by ``scale`` (the
    latest grade or regrade of each event), over the subjects infused; grade 0: none."""
    worst: dict[str, int] = {}
    refs = _infusion_refs(population)
    for course in population:
        graded = [g for g in course.grades.values() if g.value[0] == scale]
        worst[course.subject_id] = max((g.value[1] for g in graded), default=0)
        refs += [g.ref for g in graded]
    by_grade = {}
    for grade in GRADES:
        at = [c for c in population if worst[c.subject_id] == grade]
        by_grade[str(grade)] = {k: v for k, v in _proportion(at, population, []).items()
                                if k in ("numerator", "rate", "subjects")}  # fmt: skip
    return {
        "scale": scale,
        "by_maximum_grade": by_grade,
        "any_grade": _proportion(
            [c for c in population if worst[c.subject_id] > 0], population, refs
        ),
    }


def _nearest(dated: Iterable[Dated], course: Course, visit: NamedVisit) -> Dated | None:
    """The assessment in the visit's window nearest its target (the earlier on a tie)."""
    first, target, last = visit.window(course.infused.at, course.calendar)
    inside = [(abs(course.study_day_of(d.at) - target), d.at, d) for d in dated
              if first <= course.study_day_of(d.at) <= last]  # fmt: skip
    return min(inside, key=lambda x: (x[0], x[1]))[2] if inside else None


def remission_at_visit(population: list[Course], name: str, visit: NamedVisit) -> dict[str, Any]:
    """DORIS remission and LLDAS at the visit ``name`` of the population's study: the
    response assessment in its window nearest the target day; a subject without one
    counts as not meeting either."""
    doris, lldas, refs = [], [], _infusion_refs(population)
    windows = {}
    for course in population:
        first, target, last = visit.window(course.infused.at, course.calendar)
        windows[course.subject_id] = {"first_study_day": first, "target_study_day": target,
                                      "last_study_day": last}  # fmt: skip
        at = _nearest(course.remissions, course, visit)
        if at is not None:
            refs.append(at.ref)
            if at.value["doris"]:
                doris.append(course)
            if at.value["lldas"]:
                lldas.append(course)
    return {
        "visit": name,
        "window_days": {"target_after_infusion": visit.after_infusion.days,
                        "before": visit.days_before, "after": visit.days_after},
        "windows": windows,
        "doris": _proportion(doris, population, refs),
        "lldas": _proportion(lldas, population, refs),
    }  # fmt: skip


def time_to_first_remission(population: list[Course]) -> dict[str, Any]:
    """From the infusion to the first complete or partial remission; censored at the last
    assessment (death and progression do not end it: they censor there too)."""
    observations = []
    for course in population:
        first = next((r for r in sorted(course.responses, key=lambda r: r.at)
                      if r.value in REMISSION), None)  # fmt: skip
        last = max(course.assessments, key=lambda d: d.at, default=None)
        observations.append(_observation(course, course.infused, first, last))
    return _survival_figure(observations)


def sledai_change_at_visit(
    population: list[Course], name: str, visit: NamedVisit
) -> dict[str, Any]:
    """SLEDAI-2K at the visit ``name`` of the population's study (the visit in its
    window nearest the target) minus the baseline (the last visit before the infusion's
    start, as the assessments service takes it), per subject, and its median over the
    subjects with both."""
    subjects, refs = [], []
    for course in population:
        before = [v for v in course.visits if v.at < course.infused.at]
        baseline = max(before, key=lambda v: v.at, default=None)
        at = _nearest(course.visits, course, visit)
        row: dict[str, Any] = {"subject_id": course.subject_id,
                               "baseline": None if baseline is None else baseline.value,
                               "at_visit": None if at is None else at.value,
                               "study_day": None if at is None else course.study_day_of(at.at),
                               "change": None}  # fmt: skip
        if baseline is not None and at is not None:
            row["change"] = at.value - baseline.value
            refs += [baseline.ref, at.ref]
        subjects.append(row)
    changes = [r["change"] for r in subjects if r["change"] is not None]
    return {
        "visit": name,
        "median_change": None if not changes else str(Decimal(median(changes))),
        "evaluable": sorted(r["subject_id"] for r in subjects if r["change"] is not None),
        "population": sorted(c.subject_id for c in population),
        "subjects": subjects,
        "events": _refs(refs),
    }


def time_courses(course: Course) -> dict[str, Any]:
    """Autoantibodies per analyte, and CAR-T kinetics per sample, method and target, with
    Cmax, Tmax and persistence (the last study day at or above the LLOQ)."""
    antibodies: dict[str, list[dict[str, Any]]] = {}
    for d in sorted(course.antibodies, key=lambda d: d.at):
        antibodies.setdefault(d.value["analyte"], []).append({
            "study_day": d.study_day, "value": d.value["canonical_value"],
            "unit": d.value["canonical_unit"], "flag": d.value["flag"], **d.ref.__dict__,
        })  # fmt: skip
    kinetics: dict[str, dict[str, Any]] = {}
    for d in sorted(course.kinetics, key=lambda d: d.at):
        key = f"{d.value['sample']}/{d.value['method']}/{d.value['target']}"
        series = kinetics.setdefault(key, {"unit": d.value["unit"], "points": []})
        series["points"].append({
            "study_day": d.study_day, "value": d.value["value"], "lloq": d.value["lloq"],
            "below_lloq": d.value["below_lloq"], **d.ref.__dict__,
        })  # fmt: skip
    for series in kinetics.values():
        series.update(_pharmacokinetics(series["points"]))
    return {"autoantibodies": antibodies, "car_t_kinetics": kinetics}


def _pharmacokinetics(points: list[dict[str, Any]]) -> dict[str, Any]:
    peak = max(points, key=lambda p: Decimal(p["value"]))
    quantified = [p["study_day"] for p in points if not p["below_lloq"]]
    return {
        "cmax": peak["value"],
        "tmax_study_day": peak["study_day"],
        "persistence_last_day": max(quantified, default=None),
        "persisting_at_last_sample": bool(points) and not points[-1]["below_lloq"],
    }


def infused(found: dict[str, Course]) -> list[Course]:
    """The analysis population: every subject infused, by subject id."""
    return sorted((c for c in found.values() if c.infusion is not None),
                  key=lambda c: c.subject_id)  # fmt: skip


# Each figure of ``endpoints_of`` in one line, as the console shows it beside the figure
# (the full definitions, windows and assumptions: docs/endpoints.md, "Definitions").
DEFINITIONS: dict[str, str] = {
    "version": "the version of these definitions the figures were computed by",
    "study_day_convention": "how study days are counted (the infusion's day is day 0)",
    "subjects_infused": "subjects who received CAR-T cells: every rate's denominator",
    "dlt_rate_per_dose_level": "subjects with a dose-limiting toxicity in the study's DLT "
    "window / subjects infused, per dose level",
    "teae_incidence": "subjects with an adverse event starting from the infusion to the "
    "study's last TEAE day / subjects infused",
    "crs_incidence_by_maximum_grade": "subjects infused by their worst ASTCT CRS grade "
    "(0-5) over the whole follow-up",
    "icans_incidence_by_maximum_grade": "subjects infused by their worst ASTCT ICANS grade "
    "(0-5) over the whole follow-up",
    "remission_at_visit": "subjects meeting DORIS, resp. LLDAS, at the named visit's "
    "signed response assessment / subjects infused",
    "time_to_first_remission": "Kaplan-Meier: days from the infusion to the first complete "
    "or partial remission, censored at the last assessment",
    "sledai_2k_change_from_baseline": "SLEDAI-2K at the named visit minus baseline (the "
    "last visit before the infusion), per subject, and its median",
    "objective_response_rate_3_months": "subjects with a complete or partial remission by "
    "day {last_study_day} / subjects infused",
    "disease_control_rate_from_day_28": "subjects whose first response assessment from "
    "day {first_study_day} is complete, partial or stable / subjects infused",
    "duration_of_remission": "Kaplan-Meier: from the first remission to progression or "
    "death, censored at the last assessment",
    "progression_free_survival": "Kaplan-Meier: from the infusion to the first progression "
    "or death, censored at the last assessment",
    "overall_survival": "Kaplan-Meier: from the infusion to death, censored at the last assessment",
    "time_courses": "each subject's autoantibody values and CAR-T kinetics (Cmax, Tmax, "
    "persistence above the LLOQ) by study day",
}


def definition_of(name: str, figure: Any) -> str:
    """The definition of the figure ``name`` as the console shows it beside ``figure``: the
    study days that figure was read by (``last_study_day``, ``first_study_day``; each
    study's own) written in, so a reader sees "by day 90", not a field name."""
    text = DEFINITIONS[name]
    return text.format_map(figure) if isinstance(figure, dict) else text


def trial_endpoints(
    entries: Iterable[tuple[int, Recorded]], rules: EndpointRules
) -> dict[str, Any]:
    """Every endpoint over the subjects infused in ``entries`` (a ledger of ``rules``'s
    study)."""
    return endpoints_of(TrialHistory.of(entries, rules).population, rules)


def endpoints_of(population: list[Course], rules: EndpointRules) -> dict[str, Any]:
    """Every endpoint over an analysis population (``TrialHistory.population``), by the
    ``rules`` of its study: its visits, windows and version. (The figures' names are
    fixed, the first study's: ``objective_response_rate_3_months`` and
    ``disease_control_rate_from_day_28`` hold the study's own windows.)"""
    visits = rules.visits
    return {
        "version": rules.version,
        "study_day_convention": rules.calendar.convention.value,
        "subjects_infused": len(population),
        "dlt_rate_per_dose_level": dlt_rates(population),
        "teae_incidence": teae_incidence(population),
        "crs_incidence_by_maximum_grade": incidence_by_maximum_grade(population, CRS_SCALE),
        "icans_incidence_by_maximum_grade": incidence_by_maximum_grade(population, ICANS_SCALE),
        "remission_at_visit": {
            name: remission_at_visit(population, name, visit) for name, visit in visits.items()
        },
        "time_to_first_remission": time_to_first_remission(population),
        "sledai_2k_change_from_baseline": {
            name: sledai_change_at_visit(population, name, visit) for name, visit in visits.items()
        },
        "objective_response_rate_3_months": objective_response(population, rules.calendar),
        "disease_control_rate_from_day_28": disease_control(population, rules.calendar),
        "duration_of_remission": duration_of_remission(population),
        "progression_free_survival": progression_free_survival(population),
        "overall_survival": overall_survival(population),
        "time_courses": {c.subject_id: time_courses(c) for c in population},
    }
