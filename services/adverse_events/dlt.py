"""The DLT rule set: the usual CAR-T list, an assumption until the protocol's own list is
known (docs/adverse_events.md, DLT).

An adjudication names the criterion it rests on; the record must bear it out.
"""

from __future__ import annotations

from enum import StrEnum

RULE_VERSION = "NCT05030779-dlt/1"
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


def supports(criterion: DltCriterion, scale: str, term: str, grade: int, related: bool) -> bool:
    """Whether an event graded ``grade`` on ``scale`` can be a DLT by ``criterion``."""
    haematological = term.strip().lower() in HAEMATOLOGICAL
    match criterion:
        case DltCriterion.CRS_GRADE_4:
            return scale == "ASTCT-CRS" and grade >= 4
        case DltCriterion.CRS_GRADE_3_NOT_IMPROVING_72H:
            return scale == "ASTCT-CRS" and grade >= 3
        case DltCriterion.ICANS_GRADE_3_OR_MORE:
            return scale == "ASTCT-ICANS" and grade >= 3
        case DltCriterion.NON_HAEMATOLOGICAL_GRADE_3_OR_MORE:
            return scale == "CTCAE" and grade >= 3 and not haematological
        case DltCriterion.CYTOPENIA_GRADE_4_BEYOND_DAY_28:
            return scale == "CTCAE" and grade >= 4 and haematological
        case DltCriterion.TREATMENT_RELATED_DEATH:
            return grade == 5 and related
