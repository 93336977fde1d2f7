"""Eligibility criteria as versioned data, and their evaluation.

The table is the inclusion and exclusion list of the study's definition
(``studies/<study>/definition.json``, read by ``shared.study``; docs/studies.md and
docs/enrollment.md). Every decision stores ``RULE_VERSION``, which names the study and its
definition's version: a change to any row is a new definition version, never an edit.

A limit is a limit: each value is compared *exactly* with its threshold, after an exact
unit conversion (rational arithmetic, no rounding), so 221.09 umol/L creatinine
(2.50045 mg/dL) is over 2.5 mg/dL even though it displays as 2.500. The value stored with
each result is the converted value rounded to ``NORMALISED_PLACES`` for display only;
the observation as entered (value, unit, upper limit of normal) is stored with the
screening, so the exact comparison can be done again from the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import cached_property

from services.enrollment.errors import InvalidObservation
from shared.study import (
    CategoryCriterion,
    FlagCriterion,
    QuantityCriterion,
    RatioToUlnCriterion,
    StudyDefinition,
    WashoutCriterion,
    decimal,
    study_definition,
    unit_key,
)
from shared.study import Criterion as CriterionDefinition

NORMALISED_PLACES = Decimal("0.001")

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

    description: str = ""  # the definition's ``describe()``, set by ``criterion_of``

    def describe(self) -> str:
        """The requirement as a person reads it, e.g. ``>= 30 10^9/L`` (``shared.study``)."""
        return self.description


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


def criterion_of(row: CriterionDefinition) -> Criterion:
    """A criterion of the study's definition as this module evaluates it, its decimals
    exactly as written in the file, described as the definition describes it."""
    return replace(_evaluated(row), description=row.describe())


def _evaluated(row: CriterionDefinition) -> Criterion:
    match row:
        case FlagCriterion():
            return Criterion(
                row.code, row.text, row.inclusion, Kind.FLAG, Requirement.IS, row.threshold
            )
        case CategoryCriterion():
            return Criterion(
                row.code,
                row.text,
                row.inclusion,
                Kind.CATEGORY,
                Requirement.ONE_OF,
                frozenset(row.threshold),
                categories=frozenset(row.categories),
            )
        case WashoutCriterion():
            return Criterion(
                row.code,
                row.text,
                row.inclusion,
                Kind.LAST_DOSE_DATE,
                Requirement.WASHED_OUT,
                row.threshold,
            )
        case QuantityCriterion() | RatioToUlnCriterion():
            return Criterion(
                row.code,
                row.text,
                row.inclusion,
                Kind(row.kind),
                Requirement(row.requirement),
                decimal(row.threshold),
                row.unit,
                tuple(Unit(u.label, decimal(u.factor), decimal(u.divisor)) for u in row.units),
            )


def criteria_of(definition: StudyDefinition) -> tuple[Criterion, ...]:
    """The study's inclusion and exclusion list, in the definition's order."""
    return tuple(criterion_of(row) for row in definition.eligibility.criteria)


# The version every decision stores: the study, its definition's version and this module's
# evaluation (revision 2: exact comparison; revision 1, NCT05030779-eligibility/1, rounded
# first). NCT05030779/def-1/eligibility/2 decides exactly as NCT05030779-eligibility/2 did:
# the same table, the same evaluation (docs/studies.md, Rule versions).
EVALUATION_REVISION = 2


@dataclass(frozen=True)
class EligibilityRules:
    """One study's eligibility table, as this module evaluates it, and the version its
    decisions store (``eligibility_rules``: one per study definition)."""

    rule_version: str
    criteria: tuple[Criterion, ...]
    source: StudyDefinition = field(compare=False, repr=False)

    @cached_property
    def by_code(self) -> Mapping[str, Criterion]:
        return {c.code: c for c in self.criteria}

    @classmethod
    def of(cls, definition: StudyDefinition) -> EligibilityRules:
        return cls(
            definition.rule_version("eligibility", EVALUATION_REVISION),
            criteria_of(definition),
            definition,
        )


_BUILT: dict[tuple[str, int], EligibilityRules] = {}


def eligibility_rules(definition: StudyDefinition) -> EligibilityRules:
    """The eligibility rules of a study's definition, built once per study and version."""
    key = (definition.study_id, definition.definition_version)
    rules = _BUILT.get(key)
    if rules is None or rules.source is not definition:
        rules = _BUILT[key] = EligibilityRules.of(definition)
    return rules


# The first study's, by the names they had before studies were data (no function defaults
# to them: each takes the definition of the study it acts in; ``eligibility_rules``).
STUDY = study_definition()
RULES = eligibility_rules(STUDY)
RULE_VERSION = RULES.rule_version
CRITERIA: tuple[Criterion, ...] = RULES.criteria
CRITERIA_BY_CODE: Mapping[str, Criterion] = RULES.by_code


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


def evaluate(
    screened_on: date,
    observations: Mapping[str, Observation],
    definition: StudyDefinition,
) -> EligibilityAssessment:
    """Evaluate every criterion of the definition's table against recorded observations."""
    rules = eligibility_rules(definition)
    results = []
    for criterion in rules.criteria:
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
    return EligibilityAssessment(rules.rule_version, tuple(results))


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
