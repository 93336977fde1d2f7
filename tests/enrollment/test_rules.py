"""Every eligibility boundary of the protocol record, one row each, units included."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from services.enrollment.errors import InvalidObservation
from services.enrollment.rules import (
    CRITERIA,
    CRITERIA_BY_CODE,
    RULE_VERSION,
    Kind,
    Requirement,
    evaluate,
    normalise,
)
from services.enrollment.rules import Observation as Obs
from shared.study import StudyDefinition, study_definition
from tests.support import SCREENING_DAY, eligible_observations

D = SCREENING_DAY
STUDY = study_definition()  # the first study's


def met(code: str, observation: Obs) -> bool:
    observations = {**eligible_observations(), code: observation}
    result = {r.code: r for r in evaluate(SCREENING_DAY, observations, STUDY).results}[code]
    return result.met


@pytest.mark.parametrize(
    ("code", "observation", "expected"),
    [
        # platelets >= 30 x10^9/L, in three unit spellings
        ("platelets", Obs(Decimal(30), D, "10^9/L"), True),
        ("platelets", Obs(Decimal("29.9"), D, "10^9/L"), False),
        ("platelets", Obs(Decimal(30000), D, "/uL"), True),
        ("platelets", Obs(Decimal(29999), D, "/µL"), False),
        ("platelets", Obs(Decimal(30), D, "10^3/μL"), True),
        # absolute lymphocytes >= 1.0 x10^9/L
        ("lymphocytes_absolute", Obs(Decimal("1.0"), D, "x10^9/L"), True),
        ("lymphocytes_absolute", Obs(Decimal("0.99"), D, "x10^9/L"), False),
        ("lymphocytes_absolute", Obs(Decimal(1000), D, "cells/uL"), True),
        # creatinine > 2.5 mg/dL (221 umol/L) excludes
        ("creatinine", Obs(Decimal("2.5"), D, "mg/dL"), True),
        ("creatinine", Obs(Decimal("2.51"), D, "mg/dL"), False),
        ("creatinine", Obs(Decimal(221), D, "umol/L"), True),
        ("creatinine", Obs(Decimal("221.1"), D, "µmol/L"), False),
        ("creatinine", Obs(Decimal("2.5"), D, "mg/dl"), True),
        # bilirubin > 2.0 mg/dL (34.2 umol/L) excludes
        ("bilirubin", Obs(Decimal("2.0"), D, "mg/dL"), True),
        ("bilirubin", Obs(Decimal("2.01"), D, "mg/dL"), False),
        ("bilirubin", Obs(Decimal("34.2"), D, "umol/L"), True),
        ("bilirubin", Obs(Decimal("34.3"), D, "μmol/L"), False),
        # ALT / AST > 3 x ULN excludes
        ("alt", Obs(Decimal(120), D, "U/L", Decimal(40)), True),
        ("alt", Obs(Decimal(121), D, "U/L", Decimal(40)), False),
        ("ast", Obs(Decimal(105), D, "IU/L", Decimal(35)), True),
        ("ast", Obs(Decimal("105.1"), D, "IU/L", Decimal(35)), False),
        # estimated survival > 12 weeks
        ("estimated_survival", Obs(Decimal(12), D, "weeks"), False),
        ("estimated_survival", Obs(Decimal(13), D, "weeks"), True),
        ("estimated_survival", Obs(Decimal(84), D, "days"), False),
        ("estimated_survival", Obs(Decimal(85), D, "days"), True),
        # systemic steroids within 2 weeks before screening exclude
        ("systemic_steroids", Obs(None, D), True),
        ("systemic_steroids", Obs(D - timedelta(days=14), D), True),
        ("systemic_steroids", Obs(D - timedelta(days=13), D), False),
        # pregnancy test negative or not applicable
        ("pregnancy_test", Obs("negative", D), True),
        ("pregnancy_test", Obs("not_applicable", D), True),
        ("pregnancy_test", Obs("positive", D), False),
        # inclusion flags must be present
        ("cd19_bcma_positive", Obs(False, D), False),
        ("refractory_disease", Obs(False, D), False),
        ("contraception_agreed", Obs(False, D), False),
    ],
)
def test_criterion_boundary(code: str, observation: Obs, expected: bool) -> None:
    assert met(code, observation) is expected


@pytest.mark.parametrize(
    "code",
    [
        "cns_history",
        "heart_disease_or_prolonged_qt",
        "pregnant_or_lactating",
        "severe_active_infection",
        "active_hepatitis_b_or_c",
        "hiv_infection",
        "other_uncontrolled_disease",
        "investigator_judged_risk",
    ],
)
def test_exclusion_flag_excludes_when_present(code: str) -> None:
    assert met(code, Obs(False, D)) is True
    assert met(code, Obs(True, D)) is False


# The cases a data manager found accepted when limits were compared after rounding.
@pytest.mark.parametrize(
    ("code", "observation"),
    [
        ("creatinine", Obs(Decimal("221.09"), D, "umol/L")),  # 2.50045 mg/dL > 2.5
        ("bilirubin", Obs(Decimal("34.2085"), D, "umol/L")),  # 2.00050 mg/dL > 2.0
        ("platelets", Obs(Decimal("29.9995"), D, "10^9/L")),  # < 30
        ("alt", Obs(Decimal("120.02"), D, "U/L", Decimal(40))),  # 3.0005 x ULN > 3
    ],
)
def test_a_value_past_its_limit_by_less_than_the_display_rounding_fails(
    code: str, observation: Obs
) -> None:
    assert met(code, observation) is False


def _quantity_limits() -> list[tuple[str, str, Fraction]]:
    """(criterion, unit, the limit in that unit, exactly) for every numeric criterion."""
    rows = []
    for c in CRITERIA:
        if not isinstance(c.threshold, Decimal):
            continue  # flags, categories, washout days
        if c.kind is Kind.QUANTITY:
            for unit in c.units:
                limit = Fraction(c.threshold) * Fraction(unit.divisor) / Fraction(unit.factor)
                rows.append((c.code, unit.label, limit))
        elif c.kind is Kind.RATIO_TO_ULN:
            rows.extend((c.code, unit.label, Fraction(c.threshold) * 40) for unit in c.units)
    return rows


def _observe(code: str, value: Fraction, unit: str) -> Obs:
    """``value`` (a limit, or just past it) as a site would enter it: a finite decimal."""
    number = Decimal(value.numerator) / Decimal(value.denominator)
    uln = Decimal(40) if CRITERIA_BY_CODE[code].kind is Kind.RATIO_TO_ULN else None
    return Obs(number, D, unit, uln)


@pytest.mark.parametrize(("code", "unit", "limit"), _quantity_limits())
def test_every_numeric_limit_is_exact_at_it_and_just_past_it(
    code: str, unit: str, limit: Fraction
) -> None:
    """At the limit (when a decimal can state it), one unit of the 7th decimal inside and
    one past it: past is refused even where the display rounding hides the difference."""
    criterion = CRITERIA_BY_CODE[code]
    step = Fraction(1, 10**7)
    exact = Fraction(limit.numerator * 10**7 // limit.denominator, 10**7)  # floor, 7 places
    lower, upper = (exact - step, exact + step) if exact == limit else (exact, exact + step)
    below, above = met(code, _observe(code, lower, unit)), met(code, _observe(code, upper, unit))
    if criterion.requirement is Requirement.AT_MOST:
        assert (below, above) == (True, False)
    else:  # AT_LEAST passes above; ABOVE passes above too, and fails at the limit
        assert (below, above) == (False, True)
    if exact == limit:
        at_limit = met(code, _observe(code, limit, unit))
        assert at_limit is (criterion.requirement is not Requirement.ABOVE)


def test_creatinine_in_umol_is_stored_in_mg_per_dl() -> None:
    value = normalise(CRITERIA_BY_CODE["creatinine"], Obs(Decimal(221), D, "µmol/L"))
    assert value == Decimal("2.499")


def test_bilirubin_in_umol_is_stored_in_mg_per_dl() -> None:
    value = normalise(CRITERIA_BY_CODE["bilirubin"], Obs(Decimal("34.2"), D, "umol/L"))
    assert value == Decimal("2.000")


@pytest.mark.parametrize(
    ("code", "observation"),
    [
        ("creatinine", Obs(Decimal("2.0"), D, "mmol/L")),
        ("creatinine", Obs(Decimal("2.0"), D, None)),
        ("creatinine", Obs("high", D, "mg/dL")),
        ("creatinine", Obs(Decimal(-1), D, "mg/dL")),
        ("creatinine", Obs(Decimal("NaN"), D, "mg/dL")),
        ("alt", Obs(Decimal(40), D, "U/L", None)),
        ("alt", Obs(Decimal(40), D, "U/L", Decimal(0))),
        # numbers no normalisation can hold (they overflowed the decimal context: a 500)
        ("creatinine", Obs(Decimal("9E+999999"), D, "umol/L")),
        ("platelets", Obs(Decimal("1E+30"), D, "10^9/L")),
        ("alt", Obs(Decimal("1E+20"), D, "U/L", Decimal(40))),
        ("alt", Obs(Decimal(30), D, "U/L", Decimal("1E-999999"))),
        ("alt", Obs(Decimal(30), D, "U/L", Decimal("1E+13"))),
        ("cd19_bcma_positive", Obs("yes", D)),
        ("pregnancy_test", Obs("unknown", D)),
        ("systemic_steroids", Obs("last week", D)),
    ],
)
def test_refuses_observation_that_does_not_fit_its_criterion(code: str, observation: Obs) -> None:
    with pytest.raises(InvalidObservation) as refused:
        normalise(CRITERIA_BY_CODE[code], observation)
    assert refused.value.details["criterion"] == code


def test_every_decision_records_the_rule_version_and_every_criterion() -> None:
    assessment = evaluate(SCREENING_DAY, eligible_observations(), STUDY)
    assert assessment.rule_version == RULE_VERSION
    assert [r.code for r in assessment.results] == [c.code for c in CRITERIA]
    assert assessment.eligible and assessment.failed_criteria == ()


def test_the_rule_version_names_the_study_and_its_definition_version() -> None:
    assert RULE_VERSION == "NCT05030779/def-1/eligibility/2"


def test_the_table_is_the_study_definition_s_in_its_order() -> None:
    rows = study_definition().eligibility.criteria
    assert [(c.code, c.text, c.inclusion) for c in CRITERIA] == [
        (r.code, r.text, r.inclusion) for r in rows
    ]


def redefined(platelets: str) -> StudyDefinition:
    document = study_definition().model_dump(mode="json", by_alias=True)
    document["definition_version"] = 2
    for row in document["eligibility"]["criteria"]:
        if row["code"] == "platelets":
            row["threshold"] = platelets
    return StudyDefinition.model_validate(document)


def test_a_limit_changed_in_a_new_definition_version_decides_and_is_recorded() -> None:
    observations = {**eligible_observations(), "platelets": Obs(Decimal(40), D, "10^9/L")}
    assert evaluate(D, observations, STUDY).eligible
    assessment = evaluate(D, observations, redefined("50"))
    assert assessment.failed_criteria == ("platelets",)
    assert assessment.rule_version == "NCT05030779/def-2/eligibility/2"
    platelets = {r.code: r for r in assessment.results}["platelets"]
    assert platelets.requirement == ">= 50 10^9/L"


def test_screen_failure_names_every_failed_criterion() -> None:
    observations = {
        **eligible_observations(),
        "platelets": Obs(Decimal(12), D, "10^9/L"),
        "hiv_infection": Obs(True, D),
    }
    assert evaluate(date(2026, 11, 5), observations, STUDY).failed_criteria == (
        "platelets",
        "hiv_infection",
    )


# The requirement text each decision stores with a criterion's result (and SDTM TI's rule):
# recorded in events, so the definition's describe() must keep giving exactly these.
STORED_REQUIREMENTS = {
    "cd19_bcma_positive": "is true", "refractory_disease": "is true",
    "estimated_survival": "> 12 weeks", "pregnancy_test": "one of negative, not_applicable",
    "contraception_agreed": "is true", "platelets": ">= 30 10^9/L",
    "lymphocytes_absolute": ">= 1.0 10^9/L", "cns_history": "is false",
    "heart_disease_or_prolonged_qt": "is false", "pregnant_or_lactating": "is false",
    "severe_active_infection": "is false", "active_hepatitis_b_or_c": "is false",
    "hiv_infection": "is false",
    "systemic_steroids": "no systemic dose in the 14 days before screening",
    "creatinine": "<= 2.5 mg/dL", "alt": "<= 3 x ULN", "ast": "<= 3 x ULN",
    "bilirubin": "<= 2.0 mg/dL", "other_uncontrolled_disease": "is false",
    "investigator_judged_risk": "is false",
}  # fmt: skip


def test_each_criterion_is_described_as_decisions_have_stored_it() -> None:
    assert {c.code: c.describe() for c in CRITERIA} == STORED_REQUIREMENTS
