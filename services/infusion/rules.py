"""Infusion rules as versioned data: the dose levels, the dose tolerance and the
lymphodepletion-to-infusion window come from the study's definition ("dosing",
``studies/<study>/definition.json``; assumptions until the full protocol says otherwise,
docs/infusion.md names them), one set per study (``InfusionRules.of``). Operators may
still override the first study's tolerance and window (TL_INFUSION_*, which predate
studies); the version recorded with every infusion names the values used."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

from shared.study import StudyDefinition, decimal, study_definition

MILLION = Decimal(1_000_000)
REVISION = 2  # this module's: /2 compares the dose exactly (NCT05030779-infusion/1 rounded first)
_FIRST = study_definition()  # the deployment's first study: ``InfusionRules()``'s values
_DOSING = _FIRST.dosing
_TOLERANCE = decimal(_DOSING.tolerance)
_DOSES = tuple((d.level, decimal(d.cells_per_kg_millions)) for d in _DOSING.levels)


@dataclass(frozen=True)
class InfusionRules:
    """One study's infusion rules: its dose levels, tolerance and window (by default the
    first study's; another study's: ``InfusionRules.of(its definition)``)."""

    # the infused dose may differ from the assigned level by at most this fraction
    dose_tolerance: Decimal = _TOLERANCE
    # days from the last lymphodepletion day to the infusion day (Flu/Cy typically on the 5th
    # to 3rd day before the infusion; the infusion is study day 0)
    window_min_days: int = _DOSING.lymphodepletion_to_infusion_days.min
    window_max_days: int = _DOSING.lymphodepletion_to_infusion_days.max
    # the study, its definition's version and this module's revision
    rule_version: str = _FIRST.rule_version("infusion", REVISION)
    study_id: str = _FIRST.study_id
    # dose level -> its dose in 10^6 CAR-positive cells/kg
    doses: tuple[tuple[int, Decimal], ...] = _DOSES

    @classmethod
    def of(cls, definition: StudyDefinition) -> InfusionRules:
        """The rules a study's definition gives."""
        dosing = definition.dosing
        return cls(
            dose_tolerance=decimal(dosing.tolerance),
            window_min_days=dosing.lymphodepletion_to_infusion_days.min,
            window_max_days=dosing.lymphodepletion_to_infusion_days.max,
            rule_version=definition.rule_version("infusion", REVISION),
            study_id=definition.study_id,
            doses=tuple((d.level, decimal(d.cells_per_kg_millions)) for d in dosing.levels),
        )

    def overridden(
        self,
        dose_tolerance: Decimal | None = None,
        window_min_days: int | None = None,
        window_max_days: int | None = None,
    ) -> InfusionRules:
        """These rules with an operator's values (None: the definition's)."""
        return replace(
            self,
            dose_tolerance=self.dose_tolerance if dose_tolerance is None else dose_tolerance,
            window_min_days=self.window_min_days if window_min_days is None else window_min_days,
            window_max_days=self.window_max_days if window_max_days is None else window_max_days,
        )

    @property
    def version(self) -> str:
        """The rule version with the configured values, recorded with every infusion."""
        return (
            f"{self.rule_version};tolerance={self.dose_tolerance};"
            f"window={self.window_min_days}-{self.window_max_days}d"
        )

    @property
    def dose_levels(self) -> tuple[int, ...]:
        return tuple(level for level, _ in self.doses)

    def level_dose(self, level: int) -> Decimal:
        """The dose of a dose level of the study, in 10^6 CAR-positive cells/kg; KeyError
        for a level the study does not define."""
        return dict(self.doses)[level]


# The first study's infusion rule version (the name it had before studies were data).
RULE_VERSION = InfusionRules.of(_FIRST).rule_version


def level_dose(level: int, rules: InfusionRules) -> Decimal:
    """The dose of a dose level, in 10^6 CAR-positive cells/kg, as the study defines it."""
    return rules.level_dose(level)


def cells_per_kg_millions(total_cells: Decimal, weight_kg: Decimal) -> Fraction:
    """Viable CAR-positive cells per kg of body weight, in millions, exactly."""
    return Fraction(total_cells) / Fraction(weight_kg) / Fraction(MILLION)


def for_display(dose: Fraction) -> Decimal:
    """A dose to 0.001 x10^6/kg (half up), as stored and shown; never compared."""
    thousandths = dose * 1000
    whole = (thousandths.numerator * 2 + thousandths.denominator) // (thousandths.denominator * 2)
    return Decimal(whole).scaleb(-3)


def within_tolerance(actual: Fraction, target: Decimal, tolerance: Decimal) -> bool:
    """|actual - target| <= tolerance x target (edges included), exactly: a dose 10.004 %
    under its level is out, even though it displays as the edge."""
    return abs(actual - Fraction(target)) <= Fraction(tolerance) * Fraction(target)
