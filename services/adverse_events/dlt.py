"""The DLT rule set: the criteria the services can check, of which the study's definition
adopts its list ("dlt"; NCT05030779: the usual CAR-T list, an assumption until the
protocol's own list is known; docs/adverse_events.md, DLT).

An adjudication names the criterion it rests on; the record must bear it out. Study
days are the study's (``shared.clinical``, NCT05030779: the infusion's date is day 0), so
"beyond day 28" is a cytopenia still present after the infusion's date + 28 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.clinical import Study
from shared.study import StudyDefinition, study_definition

# /2: duration criteria checked against the record; /3: study days in the study's
# convention, infusion = day 0 (/2 counted day 1 there, so "beyond day 28" began a day
# earlier); the study and its definition's version named since studies are data
REVISION = 3
RULE_VERSION = study_definition().rule_version("dlt", REVISION)
HAEMATOLOGICAL = frozenset(
    {"neutrophil count decreased", "platelet count decreased", "anemia",
     "lymphocyte count decreased", "white blood cell decreased", "febrile neutropenia"}
)  # fmt: skip


class DltCriterion(StrEnum):
    CRS_GRADE_4 = "crs_grade_4"
    CRS_GRADE_3_NOT_IMPROVING_72H = "crs_grade_3_not_improving_72h"
    ICANS_GRADE_3_OR_MORE = "icans_grade_3_or_more"
    NON_HAEMATOLOGICAL_GRADE_3_OR_MORE = "non_haematological_grade_3_or_more"
    CYTOPENIA_GRADE_4_BEYOND_DAY_28 = "cytopenia_grade_4_beyond_day_28"
    TREATMENT_RELATED_DEATH = "treatment_related_death"


@dataclass(frozen=True)
class DltRules:
    """A study's DLT list and the hours a grade 3 CRS has to improve (its definition's
    "dlt"), and the rule version an adjudication by them records (naming the study)."""

    adopted: frozenset[DltCriterion]
    improvement_hours: int
    rule_version: str

    @classmethod
    def of(cls, definition: StudyDefinition) -> DltRules:
        return cls(
            frozenset(DltCriterion(code) for code in definition.dlt.criteria),
            definition.dlt.crs_improvement_hours,
            definition.rule_version("dlt", REVISION),
        )


# The first study's, by the names they had before studies were data (the rules: ``DltRules``).
ADOPTED = DltRules.of(study_definition()).adopted
IMPROVEMENT_HOURS = study_definition().dlt.crs_improvement_hours


@dataclass(frozen=True)
class Course:
    """What the record says of an event's course when it is adjudicated: its onset (and
    study day), the date it resolved if it has, and the server time of the adjudication."""

    onset_at: datetime
    onset_day: int  # study day of the onset in the study's convention (in the DLT window)
    resolved_on: date | None
    now: datetime

    def study_day(self, day: date) -> int:
        return self.onset_day + (day - self.onset_at.date()).days

    @property
    def last_day_present(self) -> int:
        """The last study day the record shows the event present: the day it resolved, or
        today while it lasts."""
        return self.study_day(self.resolved_on or self.now.date())

    def lasted_beyond(self, hours: int) -> bool:
        """Whether the record shows the event lasting ``hours`` (NCT05030779: 72 h) from
        its onset: unresolved then, or resolved no earlier than that date. (A resolution
        is a date: one on an earlier date is a certain improvement within the hours.)"""
        limit = self.onset_at + timedelta(hours=hours)
        if self.resolved_on is None:
            return self.now >= limit
        return self.resolved_on >= limit.date()


def supports(
    criterion: DltCriterion,
    scale: str,
    term: str,
    grade: int,
    related: bool,
    course: Course,
    study: Study,
    rules: DltRules,
) -> bool:
    """Whether an event graded ``grade`` on ``scale``, with the course the record shows
    (study days in ``study``'s convention), can be a DLT by ``criterion`` under the
    study's DLT ``rules``."""
    adopted, hours = rules.adopted, rules.improvement_hours
    if criterion not in adopted:
        return False  # not a DLT criterion of this study
    haematological = term.strip().lower() in HAEMATOLOGICAL
    match criterion:
        case DltCriterion.CRS_GRADE_4:
            return scale == "ASTCT-CRS" and grade >= 4
        case DltCriterion.CRS_GRADE_3_NOT_IMPROVING_72H:
            return scale == "ASTCT-CRS" and grade >= 3 and course.lasted_beyond(hours)
        case DltCriterion.ICANS_GRADE_3_OR_MORE:
            return scale == "ASTCT-ICANS" and grade >= 3
        case DltCriterion.NON_HAEMATOLOGICAL_GRADE_3_OR_MORE:
            return scale == "CTCAE" and grade >= 3 and not haematological
        case DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28:
            beyond = course.last_day_present > study.dlt_window.last
            return scale == "CTCAE" and grade >= 4 and haematological and beyond
        case DltCriterion.TREATMENT_RELATED_DEATH:
            return grade == 5 and related
