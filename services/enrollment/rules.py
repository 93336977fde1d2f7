"""Eligibility criteria of NCT05030779 as versioned data, and their evaluation.

The table below is the inclusion and exclusion list of the protocol record
(ClinicalTrials.gov NCT05030779; docs/enrollment.md). Every decision stores
``RULE_VERSION``; a change to any row is a new version, never an edit of this one.

A limit is a limit: each value is compared *exactly* with its threshold, after an exact
unit conversion (rational arithmetic, no rounding), so 221.09 umol/L creatinine
(2.50045 mg/dL) is over 2.5 mg/dL even though it displays as 2.500. The value stored with
each result is the converted value rounded to ``NORMALISED_PLACES`` for display only;
the observation as entered (value, unit, upper limit of normal) is stored with the
screening, so the exact comparison can be done again from the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from services.enrollment.errors import InvalidObservation

RULE_VERSION = "NCT05030779-eligibility/2"  # /2: exact comparison (/1 rounded first)
NORMALISED_PLACES = Decimal("0.001")
STEROID_WASHOUT_DAYS = 14

ObservedValue = Decimal | bool | str | date | None


class Kind(StrEnum):
    """How a criterion is observed."""

    QUANTITY = "quantity"  # a number with a unit
    RATIO_TO_ULN = "ratio_to_uln"  # a number in U/L with its upper limit of normal
    FLAG = "flag"  # present (true) or absent (false)
    CATEGORY = "category"  # one of a few named results
    LAST_DOSE_DATE = "last_dose_date"  # date of the last dose, or null if never


class Requirement(StrEnum):
    """What the normalised value must satisfy to meet the criterion."""

    AT_LEAST = ">="
    ABOVE = ">"
    AT_MOST = "<="
    IS = "is"
    ONE_OF = "one of"
    WASHED_OUT = "washed out"


@dataclass(frozen=True)
class Unit:
    """An accepted unit and how to reach the canonical one: ``value * factor / divisor``."""

    label: str
    factor: Decimal = Decimal(1)
    divisor: Decimal = Decimal(1)


@dataclass(frozen=True)
class Criterion:
    """One row of the protocol's inclusion or exclusion list."""

    code: str
    text: str
    inclusion: bool
    kind: Kind
    requirement: Requirement
    threshold: Decimal | bool | frozenset[str] | int
    unit: str | None = None
    units: tuple[Unit, ...] = ()
    categories: frozenset[str] = field(default_factory=frozenset)

    def describe(self) -> str:
        """The requirement as a person reads it, e.g. ``>= 30 10^9/L``."""
        if isinstance(self.threshold, frozenset):
            return f"{self.requirement} {', '.join(sorted(self.threshold))}"
        if self.requirement is Requirement.WASHED_OUT:
            return f"no systemic dose in the {self.threshold} days before screening"
        unit = f" {self.unit}" if self.unit else ""
        threshold = str(self.threshold).lower()
        return f"{self.requirement} {threshold}{unit}"


@dataclass(frozen=True)
class Observation:
    """A screening observation as entered: value, unit, reference limit and date."""

    value: ObservedValue
    observed_on: date
    unit: str | None = None
    upper_limit_normal: Decimal | None = None


@dataclass(frozen=True)
class CriterionResult:
    """One criterion evaluated: the normalised value, the requirement and whether it is met."""

    code: str
    met: bool
    value: ObservedValue
    unit: str | None
    requirement: str


@dataclass(frozen=True)
class EligibilityAssessment:
    """Every criterion evaluated under one rule version."""

    rule_version: str
    results: tuple[CriterionResult, ...]

    @property
    def eligible(self) -> bool:
        return all(result.met for result in self.results)

    @property
    def failed_criteria(self) -> tuple[str, ...]:
        return tuple(result.code for result in self.results if not result.met)


_COUNT = (
    Unit("10^9/L"),
    Unit("x10^9/L"),
    Unit("G/L"),
    Unit("10^3/uL"),
    Unit("x10^3/uL"),
    Unit("/uL", divisor=Decimal(1000)),
    Unit("cells/uL", divisor=Decimal(1000)),
)
_ENZYME = (Unit("U/L"), Unit("IU/L"))


def _flag(code: str, text: str, *, inclusion: bool) -> Criterion:
    # Inclusion flags must be present; exclusion flags must be absent.
    return Criterion(code, text, inclusion, Kind.FLAG, Requirement.IS, inclusion)


def _liver_enzyme(code: str, name: str) -> Criterion:
    # The protocol excludes either transaminase above 3 x its upper limit of normal.
    return Criterion(
        code,
        f"{name} > 3 x upper limit of normal excludes",
        False,
        Kind.RATIO_TO_ULN,
        Requirement.AT_MOST,
        Decimal(3),
        "x ULN",
        _ENZYME,
    )


CRITERIA: tuple[Criterion, ...] = (
    _flag("cd19_bcma_positive", "SLE with positive CD19/BCMA expression", inclusion=True),
    _flag(
        "refractory_disease",
        "conventional treatment not effective and/or no effective treatment",
        inclusion=True,
    ),
    Criterion(
        "estimated_survival",
        "estimated survival time > 12 weeks",
        True,
        Kind.QUANTITY,
        Requirement.ABOVE,
        Decimal(12),
        "weeks",
        (Unit("weeks"), Unit("days", divisor=Decimal(7))),
    ),
    Criterion(
        "pregnancy_test",
        "negative urine pregnancy test before administration (where applicable)",
        True,
        Kind.CATEGORY,
        Requirement.ONE_OF,
        frozenset({"negative", "not_applicable"}),
        categories=frozenset({"negative", "positive", "not_applicable"}),
    ),
    _flag(
        "contraception_agreed",
        "agrees to effective contraception until the last follow-up",
        inclusion=True,
    ),
    Criterion(
        "platelets",
        "platelets >= 30 x10^9/L",
        True,
        Kind.QUANTITY,
        Requirement.AT_LEAST,
        Decimal(30),
        "10^9/L",
        _COUNT,
    ),
    Criterion(
        "lymphocytes_absolute",
        "absolute lymphocyte count >= 1.0 x10^9/L",
        True,
        Kind.QUANTITY,
        Requirement.AT_LEAST,
        Decimal("1.0"),
        "10^9/L",
        _COUNT,
    ),
    _flag(
        "cns_history",
        "craniocerebral trauma, disturbance of consciousness, epilepsy, "
        "cerebral ischaemia or haemorrhage",
        inclusion=False,
    ),
    _flag(
        "heart_disease_or_prolonged_qt",
        "prolonged QT interval or severe heart disease",
        inclusion=False,
    ),
    _flag("pregnant_or_lactating", "pregnant or lactating", inclusion=False),
    _flag(
        "severe_active_infection",
        "severe active infection (simple urinary tract infection and bacterial "
        "pharyngitis excepted)",
        inclusion=False,
    ),
    _flag("active_hepatitis_b_or_c", "active hepatitis B or C infection", inclusion=False),
    _flag("hiv_infection", "HIV infection", inclusion=False),
    Criterion(
        "systemic_steroids",
        "systemic steroids within 2 weeks before screening (inhaled steroids excepted)",
        False,
        Kind.LAST_DOSE_DATE,
        Requirement.WASHED_OUT,
        STEROID_WASHOUT_DAYS,
    ),
    Criterion(
        "creatinine",
        "creatinine > 2.5 mg/dL excludes",
        False,
        Kind.QUANTITY,
        Requirement.AT_MOST,
        Decimal("2.5"),
        "mg/dL",
        (Unit("mg/dL"), Unit("umol/L", divisor=Decimal("88.42"))),
    ),
    _liver_enzyme("alt", "ALT"),
    _liver_enzyme("ast", "AST"),
    Criterion(
        "bilirubin",
        "bilirubin > 2.0 mg/dL excludes",
        False,
        Kind.QUANTITY,
        Requirement.AT_MOST,
        Decimal("2.0"),
        "mg/dL",
        (Unit("mg/dL"), Unit("umol/L", divisor=Decimal("17.1"))),
    ),
    _flag(
        "other_uncontrolled_disease",
        "other uncontrolled disease unsuitable for the trial",
        inclusion=False,
    ),
    _flag(
        "investigator_judged_risk",
        "any situation the investigator believes increases risk or interferes with results",
        inclusion=False,
    ),
)
CRITERIA_BY_CODE: Mapping[str, Criterion] = {c.code: c for c in CRITERIA}


def unit_key(label: str) -> str:
    """Compare units leniently: case, spaces, the two micro signs and the times sign."""
    return label.replace("µ", "u").replace("μ", "u").replace("×", "x").replace(" ", "").lower()


def normalise(criterion: Criterion, observation: Observation) -> ObservedValue:
    """The observation's value in the criterion's canonical form, rounded for display, or
    InvalidObservation. Compare with ``exact`` instead: rounding may cross a limit."""
    value = exact(criterion, observation)
    if isinstance(value, Fraction):
        return _round(value)
    return value


def exact(criterion: Criterion, observation: Observation) -> Fraction | bool | str | date | None:
    """The observation's value in the criterion's canonical form, exactly (a quantity as a
    fraction: no rounding), or InvalidObservation."""
    value = observation.value
    match criterion.kind:
        case Kind.FLAG:
            if not isinstance(value, bool):
                raise _invalid(criterion, value, "expects true or false")
            return value
        case Kind.CATEGORY:
            if not isinstance(value, str) or value not in criterion.categories:
                allowed = ", ".join(sorted(criterion.categories))
                raise _invalid(criterion, value, f"expects one of {allowed}")
            return value
        case Kind.LAST_DOSE_DATE:
            if value is not None and not isinstance(value, date):
                raise _invalid(criterion, value, "expects the date of the last dose, or null")
            return value
        case Kind.QUANTITY:
            return Fraction(_number(criterion, value)) * _unit_ratio(criterion, observation)
        case Kind.RATIO_TO_ULN:
            return Fraction(_number(criterion, value)) / _upper_limit(criterion, observation)


def is_met(criterion: Criterion, normalised: Fraction | ObservedValue, screened_on: date) -> bool:
    """Whether a value in the criterion's canonical form satisfies its requirement; give
    it the ``exact`` value (a rounded one may have crossed the limit)."""
    threshold = criterion.threshold
    match criterion.requirement:
        case Requirement.IS:
            return normalised is threshold
        case Requirement.ONE_OF:
            return isinstance(threshold, frozenset) and normalised in threshold
        case Requirement.WASHED_OUT:
            if normalised is None:
                return True
            assert isinstance(normalised, date) and isinstance(threshold, int)  # noqa: S101
            return (screened_on - normalised).days >= threshold
    assert isinstance(normalised, Fraction | Decimal) and isinstance(threshold, Decimal)  # noqa: S101
    value, limit = Fraction(normalised), Fraction(threshold)
    match criterion.requirement:
        case Requirement.AT_LEAST:
            return value >= limit
        case Requirement.ABOVE:
            return value > limit
        case _:
            return value <= limit


def evaluate(screened_on: date, observations: Mapping[str, Observation]) -> EligibilityAssessment:
    """Evaluate every criterion of the table against recorded observations."""
    results = []
    for criterion in CRITERIA:
        value = exact(criterion, observations[criterion.code])
        results.append(
            CriterionResult(
                code=criterion.code,
                met=is_met(criterion, value, screened_on),
                value=_round(value) if isinstance(value, Fraction) else value,
                unit=criterion.unit,
                requirement=criterion.describe(),
            )
        )
    return EligibilityAssessment(RULE_VERSION, tuple(results))


# Far beyond any laboratory value or limit: a bound that keeps a typing error (or a
# hostile 10^9999) out of the exact arithmetic and the stored display value.
_LARGEST = Decimal("1E12")
_SMALLEST_LIMIT = Decimal("1E-6")


def _number(criterion: Criterion, value: ObservedValue) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise _invalid(criterion, value, "expects a number")
    if not value.is_finite() or not 0 <= value <= _LARGEST:
        raise _invalid(criterion, value, "expects a finite number from 0 to 10^12")
    return value


def _unit_ratio(criterion: Criterion, observation: Observation) -> Fraction:
    unit = _accepted_unit(criterion, observation.unit)
    return Fraction(unit.factor) / Fraction(unit.divisor)


def _upper_limit(criterion: Criterion, observation: Observation) -> Fraction:
    _accepted_unit(criterion, observation.unit)
    limit = observation.upper_limit_normal
    if limit is None or not limit.is_finite() or not _SMALLEST_LIMIT <= limit <= _LARGEST:
        raise _invalid(
            criterion, limit, "expects upper_limit_normal from 10^-6 to 10^12, in the same unit"
        )
    return Fraction(limit)


def _accepted_unit(criterion: Criterion, label: str | None) -> Unit:
    key = unit_key(label or "")
    for unit in criterion.units:
        if unit_key(unit.label) == key:
            return unit
    accepted = ", ".join(unit.label for unit in criterion.units)
    raise InvalidObservation(
        f"{criterion.code}: unit {label!r} is not accepted (use one of {accepted})",
        criterion=criterion.code,
        unit=label,
        accepted_units=[unit.label for unit in criterion.units],
    )


def _round(value: Fraction) -> Decimal:
    """For display: half up to ``NORMALISED_PLACES``, from the exact value."""
    scaled = value / Fraction(NORMALISED_PLACES)
    whole = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    return (Decimal(whole) * NORMALISED_PLACES).quantize(NORMALISED_PLACES)


def _invalid(criterion: Criterion, value: object, expectation: str) -> InvalidObservation:
    return InvalidObservation(
        f"{criterion.code}: {value!r} is not valid, {expectation}",
        criterion=criterion.code,
        value=str(value),
    )
