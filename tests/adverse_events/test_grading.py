"""Every row and edge of the CTCAE, ASTCT CRS and ASTCT ICANS tables, one case each."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.adverse_events.dlt import HAEMATOLOGICAL
from services.adverse_events.errors import GradeNotAllowed, InvalidGradingInput, ReasonRequired
from services.adverse_events.grading import (
    CTCAE_TERMS,
    RULE_VERSION,
    Consciousness,
    CrsInputs,
    Hypotension,
    IcansInputs,
    Motor,
    Oxygen,
    RaisedIcp,
    Seizure,
    allowed_grades,
    check_ctcae_grade,
    check_manual_grade,
    grade_crs,
    grade_crs_explained,
    grade_icans,
    grade_icans_explained,
    ice_score,
    oxygen_by_nasal_cannula,
    term_key,
)

ROOT = Path(__file__).resolve().parents[2]

FEVER = Decimal("39.0")
NO_FEVER = Decimal("37.0")

# ---------------------------------------------------------------------------------------
# CTCAE v5.0
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "grade"),
    [
        ("Fever", 5),
        ("Anemia", 5),
        ("Neutrophil count decreased", 4),
        ("Platelet count decreased", 1),
        ("Hypotension", 5),
        ("Hypoxia", 2),
        ("Hypoxia", 4),
        ("Alopecia", 2),
        ("Nausea", 3),
        ("Fatigue", 3),
        ("Headache", 3),
        ("Lung infection", 2),
        ("Lung infection", 5),
        ("Febrile neutropenia", 3),
        ("Sepsis", 3),
        ("Encephalopathy", 5),
        ("Seizure", 1),
        ("Edema cerebral", 4),
        ("hypoxia", 3),  # case does not matter
        ("  Neutrophil   count decreased ", 1),  # nor runs of spaces
        ("Rash acneiform", 1),  # a term not in the table allows 1-5
        ("Rash acneiform", 5),
    ],
)
def test_accepts_a_grade_the_term_allows(term: str, grade: int) -> None:
    assert check_ctcae_grade(term, grade) == grade


@pytest.mark.parametrize(
    ("term", "grade"),
    [
        ("Hypoxia", 1),
        ("Hypoxia", 5),
        ("Alopecia", 3),
        ("Nausea", 4),
        ("Fatigue", 4),
        ("Headache", 4),
        ("Neutrophil count decreased", 5),
        ("Platelet count decreased", 5),
        ("Lung infection", 1),
        ("Febrile neutropenia", 2),
        ("Sepsis", 2),
        ("Edema cerebral", 3),
    ],
)
def test_refuses_a_grade_the_term_does_not_allow(term: str, grade: int) -> None:
    with pytest.raises(GradeNotAllowed) as refused:
        check_ctcae_grade(term, grade)
    assert refused.value.code == "grade_not_allowed"
    assert refused.value.details == {
        "term": term,
        "grade": grade,
        "allowed": sorted(allowed_grades(term)),
    }


@pytest.mark.parametrize(
    ("term", "grade"),
    [("Fever", 0), ("Fever", 6), ("Fever", -1), ("Rash acneiform", 0), ("Rash acneiform", 6)],
)
def test_refuses_a_grade_outside_one_to_five(term: str, grade: int) -> None:
    with pytest.raises(GradeNotAllowed):
        check_ctcae_grade(term, grade)


def test_refuses_a_boolean_as_a_grade() -> None:
    with pytest.raises(GradeNotAllowed):
        check_ctcae_grade("Fever", True)


def test_refuses_an_empty_term() -> None:
    with pytest.raises(InvalidGradingInput):
        check_ctcae_grade("  ", 1)


def test_every_term_of_the_table_allows_a_contiguous_range_within_one_to_five() -> None:
    for term, grades in CTCAE_TERMS.items():
        assert grades, term
        assert grades <= {1, 2, 3, 4, 5}, term
        assert grades == set(range(min(grades), max(grades) + 1)), term


# One row per term of ``CTCAE_TERMS``, written out from CTCAE v5.0 (NCI, 27 November
# 2017): the lowest and the highest grade the term defines, and whether the DLT rule
# counts it as haematological (``dlt.HAEMATOLOGICAL``). A term added to the rules without
# its row here, or with a different range or class, fails the tests below.
CTCAE_V5: dict[str, tuple[int, int, bool]] = {
    "Infusion related reaction": (1, 5, False),
    "Fever": (1, 5, False),
    "Chills": (1, 3, False),
    "Fatigue": (1, 3, False),
    "Anemia": (1, 5, True),
    "Febrile neutropenia": (3, 5, True),
    "Disseminated intravascular coagulation": (2, 5, False),
    "Neutrophil count decreased": (1, 4, True),
    "Platelet count decreased": (1, 4, True),
    "Lymphocyte count decreased": (1, 4, True),
    "White blood cell decreased": (1, 4, True),
    "Fibrinogen decreased": (1, 4, False),
    "Alanine aminotransferase increased": (1, 4, False),
    "Aspartate aminotransferase increased": (1, 4, False),
    "Blood bilirubin increased": (1, 4, False),
    "Creatinine increased": (1, 4, False),
    "Hypotension": (1, 5, False),
    "Sinus tachycardia": (1, 3, False),
    "Hypoxia": (2, 4, False),
    "Lung infection": (2, 5, False),
    "Upper respiratory infection": (2, 5, False),
    "Urinary tract infection": (2, 5, False),
    "Sepsis": (3, 5, False),
    "Encephalopathy": (1, 5, False),
    "Seizure": (1, 5, False),
    "Tremor": (1, 3, False),
    "Headache": (1, 3, False),
    "Edema cerebral": (4, 5, False),
    "Nausea": (1, 3, False),
    "Vomiting": (1, 5, False),
    "Diarrhea": (1, 5, False),
    "Alopecia": (1, 2, False),
}
# The digest of ``CTCAE_TERMS`` under each rule version: a change to the table is a new
# RULE_VERSION (results record the version they were graded by), never an edit of one.
CTCAE_TABLE_DIGESTS = {
    "NCT05030779-grading/1": "be9dea5ec8db0c685fb97d0eca2ce5bde36fe2cc06958118bfe85bdad3b67bd1",
    "NCT05030779-grading/2": "11787eb6ad6bd6258593d608139da207d5ccef862806316b0dc0250ee519a3ac",
    # /3: the table unchanged; grade 5 needs the death on the record (check_grade_5)
    "NCT05030779-grading/3": "11787eb6ad6bd6258593d608139da207d5ccef862806316b0dc0250ee519a3ac",
}


def ctcae_digest(terms: Mapping[str, frozenset[int]]) -> str:
    table = {term: sorted(grades) for term, grades in terms.items()}
    return hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()


def test_every_term_of_the_rules_has_its_row_in_this_test_and_no_other() -> None:
    assert sorted(CTCAE_V5) == sorted(CTCAE_TERMS)


@pytest.mark.parametrize(("term", "row"), CTCAE_V5.items())
def test_each_term_allows_exactly_the_grades_of_its_row(
    term: str, row: tuple[int, int, bool]
) -> None:
    lowest, highest, _ = row
    assert allowed_grades(term) == set(range(lowest, highest + 1))
    assert check_ctcae_grade(term, lowest) == lowest
    assert check_ctcae_grade(term, highest) == highest
    for outside in (lowest - 1, highest + 1):
        with pytest.raises(GradeNotAllowed):
            check_ctcae_grade(term, outside)


def test_the_dlt_rule_counts_as_haematological_the_rows_marked_so() -> None:
    marked = {term_key(term) for term, (_, _, blood) in CTCAE_V5.items() if blood}
    assert set(HAEMATOLOGICAL) == marked


def test_the_ctcae_table_is_the_one_its_rule_version_names() -> None:
    recorded = CTCAE_TABLE_DIGESTS.get(RULE_VERSION)
    assert recorded == ctcae_digest(CTCAE_TERMS), (
        f"CTCAE_TERMS changed under {RULE_VERSION}: give the table a new RULE_VERSION and "
        f"record its digest {ctcae_digest(CTCAE_TERMS)} in CTCAE_TABLE_DIGESTS"
    )


def test_the_adverse_events_guide_lists_every_term_with_its_grades() -> None:
    guide = (ROOT / "docs" / "adverse_events.md").read_text()
    rows = re.findall(r"^\| ([A-Z][^|]+?) \| (\d)-(\d) \| (yes|no) \|$", guide, re.MULTILINE)
    documented = {term: (int(low), int(high), blood == "yes") for term, low, high, blood in rows}
    assert documented == CTCAE_V5


# ---------------------------------------------------------------------------------------
# ASTCT CRS
# ---------------------------------------------------------------------------------------


def crs(
    temperature: Decimal = FEVER,
    hypotension: Hypotension = Hypotension.NONE,
    oxygen: Oxygen = Oxygen.NONE,
    *,
    treated: bool = False,
    death: bool = False,
) -> CrsInputs:
    return CrsInputs(temperature, treated, hypotension, oxygen, death)


H, OX = Hypotension, Oxygen
# rows: hypotension; columns: oxygen NONE, LOW_FLOW, HIGH_FLOW, POSITIVE_PRESSURE (with fever)
CRS_MATRIX = {
    H.NONE: (1, 2, 3, 4),
    H.NO_VASOPRESSOR: (2, 2, 3, 4),
    H.ONE_VASOPRESSOR: (3, 3, 3, 4),
    H.MULTIPLE_VASOPRESSORS: (4, 4, 4, 4),
}
OXYGEN_COLUMNS = (OX.NONE, OX.LOW_FLOW, OX.HIGH_FLOW, OX.POSITIVE_PRESSURE)


@pytest.mark.parametrize(
    ("hypotension", "oxygen", "expected"),
    [
        (hypotension, oxygen, grades[column])
        for hypotension, grades in CRS_MATRIX.items()
        for column, oxygen in enumerate(OXYGEN_COLUMNS)
    ],
)
def test_crs_grade_is_the_worse_of_hypotension_and_hypoxia(
    hypotension: Hypotension, oxygen: Oxygen, expected: int
) -> None:
    assert grade_crs(crs(FEVER, hypotension, oxygen)) == expected


@pytest.mark.parametrize(
    ("inputs", "grade", "by"),
    [
        # grade 1: fever, no hypotension, no hypoxia
        (crs(FEVER), 1, "fever"),
        # grade 2: fluids only, or low-flow nasal cannula / blow-by
        (crs(FEVER, H.NO_VASOPRESSOR), 2, "hypotension"),
        (crs(FEVER, oxygen=OX.LOW_FLOW), 2, "hypoxia"),
        (crs(FEVER, H.NO_VASOPRESSOR, OX.LOW_FLOW), 2, "hypotension+hypoxia"),
        # grade 3: one vasopressor, or high flow / face mask / non-rebreather / Venturi
        (crs(FEVER, H.ONE_VASOPRESSOR), 3, "hypotension"),
        (crs(FEVER, oxygen=OX.HIGH_FLOW), 3, "hypoxia"),
        (crs(FEVER, H.ONE_VASOPRESSOR, OX.LOW_FLOW), 3, "hypotension"),
        # grade 4: several vasopressors, or positive pressure
        (crs(FEVER, H.MULTIPLE_VASOPRESSORS), 4, "hypotension"),
        (crs(FEVER, oxygen=OX.POSITIVE_PRESSURE), 4, "hypoxia"),
        (crs(FEVER, H.MULTIPLE_VASOPRESSORS, OX.POSITIVE_PRESSURE), 4, "hypotension+hypoxia"),
        # grade 5: death from CRS
        (
            crs(FEVER, H.MULTIPLE_VASOPRESSORS, OX.POSITIVE_PRESSURE, death=True),
            5,
            "death_from_crs",
        ),
    ],
)
def test_crs_grade_names_the_component_that_decided(inputs: CrsInputs, grade: int, by: str) -> None:
    result = grade_crs_explained(inputs)
    assert (result.grade, result.by) == (grade, by)
    assert result.rule_version == RULE_VERSION


@pytest.mark.parametrize(
    ("temperature", "hypotension", "expected"),
    [
        (Decimal("37.9"), H.NONE, 0),
        (Decimal("38.0"), H.NONE, 1),
        (Decimal("37.9"), H.ONE_VASOPRESSOR, 0),  # without fever it is not CRS
        (Decimal("38.0"), H.ONE_VASOPRESSOR, 3),
    ],
)
def test_crs_needs_a_fever_of_38_0_without_treatment(
    temperature: Decimal, hypotension: Hypotension, expected: int
) -> None:
    assert grade_crs(crs(temperature, hypotension)) == expected


def test_no_fever_without_treatment_is_named_as_the_reason_for_no_crs() -> None:
    assert grade_crs_explained(crs(Decimal("37.9"), H.ONE_VASOPRESSOR)).by == "no_fever"


@pytest.mark.parametrize(
    ("hypotension", "oxygen", "grade", "by"),
    [
        (H.NONE, OX.NONE, 0, "none"),
        (H.NO_VASOPRESSOR, OX.NONE, 2, "hypotension"),
        (H.NONE, OX.HIGH_FLOW, 3, "hypoxia"),
        (H.MULTIPLE_VASOPRESSORS, OX.LOW_FLOW, 4, "hypotension"),
    ],
)
def test_crs_after_tocilizumab_or_steroids_needs_no_fever(
    hypotension: Hypotension, oxygen: Oxygen, grade: int, by: str
) -> None:
    result = grade_crs_explained(crs(NO_FEVER, hypotension, oxygen, treated=True))
    assert (result.grade, result.by) == (grade, by)


def test_crs_with_fever_after_treatment_is_still_grade_1() -> None:
    assert grade_crs(crs(FEVER, treated=True)) == 1


def test_death_from_crs_is_grade_5() -> None:
    assert grade_crs(crs(NO_FEVER, treated=True, death=True)) == 5


@pytest.mark.parametrize("temperature", [Decimal(30), Decimal(45), Decimal("38.0")])
def test_accepts_a_temperature_from_30_to_45(temperature: Decimal) -> None:
    assert crs(temperature).temperature_c == temperature


@pytest.mark.parametrize(
    "temperature", [Decimal("29.9"), Decimal("45.1"), Decimal("NaN"), Decimal("Infinity"), 39.0]
)
def test_refuses_a_temperature_that_cannot_be_right(temperature: Any) -> None:
    with pytest.raises(InvalidGradingInput) as refused:
        crs(temperature)
    assert refused.value.code == "invalid_grading_input"


@pytest.mark.parametrize(
    ("flow", "expected"),
    [
        (Decimal("0.5"), OX.LOW_FLOW),
        (Decimal(6), OX.LOW_FLOW),
        (Decimal("6.1"), OX.HIGH_FLOW),
        (Decimal(60), OX.HIGH_FLOW),
    ],
)
def test_nasal_cannula_is_low_flow_up_to_6_l_min(flow: Decimal, expected: Oxygen) -> None:
    assert oxygen_by_nasal_cannula(flow) == expected


@pytest.mark.parametrize("flow", [Decimal(0), Decimal(-1), Decimal(81), Decimal("NaN")])
def test_refuses_an_oxygen_flow_that_cannot_be_right(flow: Decimal) -> None:
    with pytest.raises(InvalidGradingInput):
        oxygen_by_nasal_cannula(flow)


# ---------------------------------------------------------------------------------------
# ASTCT ICANS
# ---------------------------------------------------------------------------------------


def icans(
    ice: int | None = 10,
    consciousness: Consciousness = Consciousness.AWAKE,
    seizure: Seizure = Seizure.NONE,
    motor: Motor = Motor.NONE,
    raised_icp: RaisedIcp = RaisedIcp.NONE,
    *,
    death: bool = False,
) -> IcansInputs:
    return IcansInputs(ice, consciousness, seizure, motor, raised_icp, death)


@pytest.mark.parametrize(
    ("ice", "expected"),
    [(10, 0), (9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3)],
)
def test_icans_grade_by_ice_band_edges(ice: int, expected: int) -> None:
    assert grade_icans(icans(ice)) == expected


def test_ice_0_in_an_awake_patient_is_grade_3() -> None:
    result = grade_icans_explained(icans(0, Consciousness.AWAKE))
    assert (result.grade, result.by) == (3, "ice")


def test_ice_0_in_an_unarousable_patient_is_grade_4() -> None:
    result = grade_icans_explained(icans(0, Consciousness.UNAROUSABLE))
    assert (result.grade, result.by) == (4, "consciousness")


@pytest.mark.parametrize(
    ("consciousness", "expected"),
    [
        (Consciousness.AWAKE, 0),
        (Consciousness.AWAKENS_SPONTANEOUSLY, 1),
        (Consciousness.AWAKENS_TO_VOICE, 2),
        (Consciousness.AWAKENS_TO_TOUCH, 3),
        (Consciousness.UNAROUSABLE, 4),
    ],
)
def test_icans_grade_by_level_of_consciousness(consciousness: Consciousness, expected: int) -> None:
    assert grade_icans(icans(None, consciousness)) == expected


@pytest.mark.parametrize(
    ("inputs", "grade", "by"),
    [
        (icans(seizure=Seizure.RESOLVED_RAPIDLY), 3, "seizure"),
        (icans(seizure=Seizure.PROLONGED_OR_REPEATED), 4, "seizure"),
        (icans(motor=Motor.DEEP_FOCAL_WEAKNESS), 4, "motor"),
        (icans(raised_icp=RaisedIcp.FOCAL_OEDEMA), 3, "raised_icp"),
        (icans(raised_icp=RaisedIcp.DIFFUSE_OEDEMA_OR_SIGNS), 4, "raised_icp"),
        (icans(), 0, "none"),
        (icans(None), 0, "none"),  # ICE not assessable, awake, nothing else: no ICANS
    ],
)
def test_icans_grade_by_seizure_motor_and_oedema(inputs: IcansInputs, grade: int, by: str) -> None:
    result = grade_icans_explained(inputs)
    assert (result.grade, result.by) == (grade, by)


@pytest.mark.parametrize(
    ("inputs", "grade", "by"),
    [
        (icans(5, seizure=Seizure.RESOLVED_RAPIDLY), 3, "seizure"),
        (icans(2, raised_icp=RaisedIcp.FOCAL_OEDEMA), 3, "ice+raised_icp"),
        (icans(8, Consciousness.AWAKENS_TO_VOICE), 2, "consciousness"),
        (icans(4, Consciousness.AWAKENS_TO_VOICE), 2, "ice+consciousness"),
        (icans(1, Consciousness.AWAKENS_TO_TOUCH, motor=Motor.DEEP_FOCAL_WEAKNESS), 4, "motor"),
    ],
)
def test_icans_grade_is_the_worst_domain(inputs: IcansInputs, grade: int, by: str) -> None:
    result = grade_icans_explained(inputs)
    assert (result.grade, result.by) == (grade, by)
    assert result.rule_version == RULE_VERSION


def test_death_from_icans_is_grade_5() -> None:
    result = grade_icans_explained(icans(None, Consciousness.UNAROUSABLE, death=True))
    assert (result.grade, result.by) == (5, "death_from_icans")


@pytest.mark.parametrize("ice", [-1, 11, True, "7"])
def test_refuses_an_ice_score_outside_0_to_10(ice: Any) -> None:
    with pytest.raises(InvalidGradingInput):
        icans(ice)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((4, 3, 1, 1, 1), 10),
        ((0, 0, 0, 0, 0), 0),
        ((3, 3, 1, 1, 1), 9),
        ((4, 2, 0, 1, 0), 7),
        ((2, 1, 0, 0, 0), 3),
    ],
)
def test_ice_score_adds_its_five_parts(
    parts: tuple[int, int, int, int, int], expected: int
) -> None:
    assert ice_score(*parts) == expected


@pytest.mark.parametrize(
    ("parts", "part"),
    [
        ((5, 3, 1, 1, 1), "orientation"),
        ((-1, 3, 1, 1, 1), "orientation"),
        ((4, 4, 1, 1, 1), "naming"),
        ((4, 3, 2, 1, 1), "command"),
        ((4, 3, 1, -1, 1), "writing"),
        ((4, 3, 1, 1, 2), "attention"),
    ],
)
def test_ice_score_refuses_a_part_outside_its_range(
    parts: tuple[int, int, int, int, int], part: str
) -> None:
    with pytest.raises(InvalidGradingInput) as refused:
        ice_score(*parts)
    assert refused.value.details["part"] == part


# ---------------------------------------------------------------------------------------
# Manual grades
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_refuses_a_manual_grade_that_differs_without_a_reason(reason: str | None) -> None:
    with pytest.raises(ReasonRequired) as refused:
        check_manual_grade(2, 3, reason)
    assert refused.value.code == "reason_required"
    assert refused.value.details == {"computed": 2, "manual": 3}


def test_accepts_a_manual_grade_that_differs_with_a_reason() -> None:
    check_manual_grade(2, 3, "hypotension needed a vasopressor between two assessments")


@pytest.mark.parametrize("reason", [None, ""])
def test_accepts_a_manual_grade_equal_to_the_computed_one_without_a_reason(
    reason: str | None,
) -> None:
    check_manual_grade(3, 3, reason)


@pytest.mark.parametrize(("computed", "manual"), [(-1, 1), (1, 6), (True, 1)])
def test_refuses_a_manual_or_computed_grade_outside_0_to_5(computed: Any, manual: Any) -> None:
    with pytest.raises(InvalidGradingInput):
        check_manual_grade(computed, manual, "reason")
