"""The study definition's schema: what a study's file says, checked when it is read.

A study is data, not code: its protocol id, eligibility criteria with their limits and
units, dose levels and tolerance, escalation design, day convention and windows, and
endpoint definitions. Every number that a rule compares against is a decimal *string*
in the file (``"2.5"``), never a JSON number, so that nothing passes through a float.

Pure: pydantic models and their checks, no I/O (``shared.study.loader`` reads files).
A change to any value is a new ``definition_version`` (docs/studies.md); the rule
versions that services record name the study and the definition's version.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_VERSION = 1

# A non-negative decimal written as a string: digits, optionally a point and more digits.
DecimalText = Annotated[
    str,
    StringConstraints(pattern=r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length=32),
    Field(description="a non-negative decimal as a string (no float, no exponent)"),
]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# A criterion's short name in CDISC SDTM IE and TI (IETESTCD): 8 characters at most.
TestCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{0,7}$")]
StudyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


def decimal(text: str) -> Decimal:
    """A ``DecimalText`` as a Decimal (exactly the digits written)."""
    return Decimal(text)


def unit_key(label: str) -> str:
    """Compare units leniently: case, spaces, the two micro signs and the times sign."""
    return label.replace("µ", "u").replace("μ", "u").replace("×", "x").replace(" ", "").lower()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UnitDefinition(_Frozen):
    """An accepted unit and its exact conversion to the criterion's canonical unit:
    ``value * factor / divisor``."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    factor: DecimalText = "1"
    divisor: DecimalText = "1"

    @model_validator(mode="after")
    def _positive(self) -> UnitDefinition:
        if decimal(self.factor) == 0 or decimal(self.divisor) == 0:
            raise ValueError(f"unit {self.label!r}: factor and divisor must be above 0")
        return self


class _Criterion(_Frozen):
    code: Code
    test_code: TestCode = Field(description="its short name in SDTM IE and TI (IETESTCD)")
    text: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    inclusion: bool = Field(description="true: an inclusion criterion; false: an exclusion")
    # Each kind's ``describe()``: the requirement as a person reads it, e.g. ``>= 30
    # 10^9/L``: what every decision stores with the criterion's result, and SDTM TI's rule.


class FlagCriterion(_Criterion):
    """Present (true) or absent (false). An inclusion is met when present, an exclusion
    when absent: ``threshold`` equals ``inclusion``."""

    kind: Literal["flag"]
    requirement: Literal["is"]
    threshold: bool

    def describe(self) -> str:
        return f"is {str(self.threshold).lower()}"

    @model_validator(mode="after")
    def _inclusion_present(self) -> FlagCriterion:
        if self.threshold is not self.inclusion:
            side = "an inclusion" if self.inclusion else "an exclusion"
            raise ValueError(
                f"criterion {self.code!r}: {side} flag is met when "
                f"{'present' if self.inclusion else 'absent'}: threshold must be "
                f"{str(self.inclusion).lower()}"
            )
        return self


class CategoryCriterion(_Criterion):
    """One of a few named results; met when the result is one of ``threshold``."""

    kind: Literal["category"]
    requirement: Literal["one of"]
    threshold: Annotated[list[Code], Field(min_length=1)]
    categories: Annotated[list[Code], Field(min_length=1)]

    def describe(self) -> str:
        return f"one of {', '.join(sorted(self.threshold))}"

    @model_validator(mode="after")
    def _known(self) -> CategoryCriterion:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"criterion {self.code!r}: a category is named twice")
        unknown = sorted(set(self.threshold) - set(self.categories))
        if unknown:
            raise ValueError(f"criterion {self.code!r}: threshold names unknown {unknown}")
        return self


class WashoutCriterion(_Criterion):
    """The date of the last dose (or none): met when it is at least ``threshold`` days
    before screening."""

    kind: Literal["last_dose_date"]
    requirement: Literal["washed out"]
    threshold: Annotated[int, Field(ge=1, le=3650, description="days")]

    def describe(self) -> str:
        return f"no systemic dose in the {self.threshold} days before screening"


class _Measured(_Criterion):
    requirement: Literal[">=", ">", "<="]
    threshold: DecimalText
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    units: Annotated[list[UnitDefinition], Field(min_length=1)]

    def describe(self) -> str:
        return f"{self.requirement} {self.threshold} {self.unit}"

    @model_validator(mode="after")
    def _units_distinct(self) -> _Measured:
        keys = [unit_key(u.label) for u in self.units]
        if len(set(keys)) != len(keys):
            raise ValueError(f"criterion {self.code!r}: a unit is accepted twice")
        return self


class QuantityCriterion(_Measured):
    """A number with a unit, converted exactly to ``unit``, which must be accepted with
    factor and divisor 1."""

    kind: Literal["quantity"]

    @model_validator(mode="after")
    def _canonical_accepted(self) -> QuantityCriterion:
        canonical = [u for u in self.units if unit_key(u.label) == unit_key(self.unit)]
        if not canonical or decimal(canonical[0].factor) != decimal(canonical[0].divisor):
            raise ValueError(
                f"criterion {self.code!r}: unit {self.unit!r} is not among its accepted "
                f"units with factor = divisor ({', '.join(u.label for u in self.units)})"
            )
        return self


class RatioToUlnCriterion(_Measured):
    """A number divided by its upper limit of normal, both in one of ``units``."""

    kind: Literal["ratio_to_uln"]
    unit: Literal["x ULN"]


Criterion = Annotated[
    FlagCriterion | CategoryCriterion | WashoutCriterion | QuantityCriterion | RatioToUlnCriterion,
    Field(discriminator="kind"),
]


class Eligibility(_Frozen):
    """The protocol's inclusion and exclusion list, in the order it is evaluated and stored."""

    criteria: Annotated[list[Criterion], Field(min_length=1)]

    @model_validator(mode="after")
    def _codes_distinct(self) -> Eligibility:
        for name in ("code", "test_code"):
            codes = [getattr(c, name) for c in self.criteria]
            twice = sorted({c for c in codes if codes.count(c) > 1})
            if twice:
                raise ValueError(f"criteria named twice ({name}): {twice}")
        return self


class DoseLevel(_Frozen):
    level: Annotated[int, Field(ge=1, le=99)]
    cells_per_kg_millions: DecimalText


class DaysRange(_Frozen):
    min: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _ordered(self) -> DaysRange:
        if self.max < self.min:
            raise ValueError(f"days {self.min}-{self.max}: max is below min")
        return self


class Dosing(_Frozen):
    """The dose levels (CAR-positive viable cells per kg of body weight, in millions),
    the tolerance of an infused dose around its level, and the days from the last
    lymphodepletion day to the infusion."""

    unit: Literal["10^6 cells/kg"]
    levels: Annotated[list[DoseLevel], Field(min_length=1)]
    tolerance: DecimalText = Field(description='a fraction of the level, e.g. "0.10"')
    lymphodepletion_to_infusion_days: DaysRange

    @model_validator(mode="after")
    def _ascending(self) -> Dosing:
        numbers = [d.level for d in self.levels]
        doses = [decimal(d.cells_per_kg_millions) for d in self.levels]
        if any(b <= a for a, b in pairwise(numbers)) or any(b <= a for a, b in pairwise(doses)):
            raise ValueError(f"dose levels {numbers} must ascend, and their doses with them")
        if any(d == 0 for d in doses):
            raise ValueError("a dose level's dose must be above 0")
        if not Decimal(0) <= decimal(self.tolerance) < Decimal(1):
            raise ValueError(f"tolerance {self.tolerance} must be a fraction below 1")
        return self


class Calendar(_Frozen):
    """How study days are numbered and the windows, as study days in that convention."""

    day_convention: Literal["infusion_day_0", "infusion_day_1"]
    dlt_last_day: Annotated[int, Field(ge=0)]
    teae_last_day: Annotated[int, Field(ge=0)]
    response_last_day: Annotated[int, Field(ge=0)]
    disease_control_first_day: Annotated[int, Field(ge=0)]


class Escalation(_Frozen):
    """The dose-escalation design: 3+3 over the dose levels, then a dose expansion."""

    design: Literal["3+3"]
    cohort_size: Literal[3]
    expanded_cohort_size: Literal[6]
    dlts_exceeding: Literal[2]
    expansion_total_at_level: Annotated[int, Field(ge=1, le=1000)]


# The DLT criteria the services can check (services/adverse_events/dlt.py, DltCriterion).
DltCriterionCode = Literal[
    "crs_grade_4",
    "crs_grade_3_not_improving_72h",
    "icans_grade_3_or_more",
    "non_haematological_grade_3_or_more",
    "cytopenia_grade_4_beyond_day_28",
    "treatment_related_death",
]


class Dlt(_Frozen):
    """The dose-limiting toxicities the protocol adopts, of those the services check, and
    how long a grade 3 CRS has to improve before it counts."""

    criteria: Annotated[list[DltCriterionCode], Field(min_length=1)]
    crs_improvement_hours: Annotated[int, Field(ge=1, le=720)]

    @model_validator(mode="after")
    def _distinct(self) -> Dlt:
        if len(set(self.criteria)) != len(self.criteria):
            raise ValueError("a DLT criterion is named twice")
        return self


class Endpoint(_Frozen):
    """One endpoint of the protocol record, with the window it is measured in."""

    code: Code
    kind: Literal["primary", "secondary"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    time_frame: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Visit(_Frozen):
    """A protocol visit at which rates are read: its target in days after the infusion's
    time and its window in whole days either side."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    days_after_infusion: Annotated[int, Field(ge=0, le=3650)]
    window_days_before: Annotated[int, Field(ge=0, le=365)]
    window_days_after: Annotated[int, Field(ge=0, le=365)]


Term = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9 /-]{0,59}$")]


class Registration(_Frozen):
    """What the trial's registration says that regulators' summaries (SDTM TS, TA) state,
    in CDISC controlled terminology's submission values where CDISC has a codelist
    (SEXPOP, STYPE, INTMODEL, TTYPE, TINDTP, TBLIND, TCNTRL, ROUTE). A fact the record
    does not give is null, never a guess."""

    registry: str = Field(description="the registry that issued study_id")
    countries: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]], Field(min_length=1)
    ] = Field(description="ISO 3166-1 alpha-3 of the sites' countries")
    indication: str
    indication_snomed: str | None = Field(description="its SNOMED CT concept id")
    treatment: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    route: Term
    sex_population: Literal["BOTH", "F", "M"]
    study_type: Literal["INTERVENTIONAL", "OBSERVATIONAL"]
    intervention_model: Term
    trial_types: Annotated[list[Term], Field(min_length=1)]
    intent: Term
    blinding: Term
    randomised: bool
    control: Term
    healthy_subjects: bool
    follow_up_years: Annotated[int, Field(ge=0, le=100)]
    minimum_age: str | None = Field(description="ISO 8601 duration, e.g. P18Y")
    maximum_age: str | None = Field(description="ISO 8601 duration")
    added_on: bool | None = Field(description="whether the treatment adds to existing ones")


class StudyDefinition(_Frozen):
    """One version of a study's definition (``studies/<study_id>/definition.json``)."""

    schema_ref: str | None = Field(
        default=None, alias="$schema", description="the schema file, for editors"
    )
    schema_version: Literal[1] = Field(description="the version of this schema")
    study_id: StudyId
    definition_version: Annotated[int, Field(ge=1)]
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    phase: str | None = Field(description="as registered; null when the record does not say")
    sponsor: str
    conditions: Annotated[list[str], Field(min_length=1)]
    intervention: str
    design: str = Field(description="allocation and arms, as registered")
    planned_enrollment: Annotated[int, Field(ge=1)]
    registration: Registration
    source: str = Field(description="where the values come from")
    assumptions: list[str] = Field(description="values not stated by the source, and why")
    calendar: Calendar
    eligibility: Eligibility
    dosing: Dosing
    escalation: Escalation
    dlt: Dlt
    endpoints: Annotated[list[Endpoint], Field(min_length=1)]
    visits: list[Visit] = Field(description="the named visits at which rates are read")

    @model_validator(mode="after")
    def _consistent(self) -> StudyDefinition:
        codes = [e.code for e in self.endpoints]
        if len(set(codes)) != len(codes):
            raise ValueError("an endpoint is named twice")
        names = [v.name for v in self.visits]
        if len(set(names)) != len(names):
            raise ValueError("a visit is named twice")
        infusion_day = 0 if self.calendar.day_convention == "infusion_day_0" else 1
        for name in ("dlt_last_day", "teae_last_day", "response_last_day",
                     "disease_control_first_day"):  # fmt: skip
            if getattr(self.calendar, name) < infusion_day:
                raise ValueError(f"calendar.{name} is before the infusion's day")
        return self

    def rule_version(self, rules: str, revision: int) -> str:
        """The version recorded with a result derived by ``rules`` (revision ``revision``
        of their code) from this definition: ``<study>/def-<n>/<rules>/<revision>``."""
        return f"{self.study_id}/def-{self.definition_version}/{rules}/{revision}"

    def urn(self, name: str) -> str:
        """The URN of one of the study's record families, e.g. the namespace of its subjects'
        ids: ``urn:trial-ledger:<study>:<name>`` (for NCT05030779, the names its ids have
        been derived from since the first event)."""
        return f"urn:trial-ledger:{self.study_id}:{name}"

    def dose(self, level: int) -> Decimal:
        """The dose of ``level`` in 10^6 cells/kg; KeyError for a level not defined."""
        for dose in self.dosing.levels:
            if dose.level == level:
                return decimal(dose.cells_per_kg_millions)
        raise KeyError(level)

    @property
    def dose_levels(self) -> tuple[int, ...]:
        return tuple(d.level for d in self.dosing.levels)
