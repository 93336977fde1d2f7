"""Infusion rules as versioned data: the dose levels, the dose tolerance and the
lymphodepletion-to-infusion window come from the study's definition ("dosing",
``studies/<study>/definition.json``; assumptions until the full protocol says otherwise,
docs/infusion.md names them). Operators may still override the tolerance and window
(TL_INFUSION_*); the version recorded with every infusion names the values used."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from shared.study import decimal, study_definition

# The study, its definition's version and this module's revision: /2 compares the dose
# exactly (NCT05030779-infusion/1 rounded first)
RULE_VERSION = study_definition().rule_version("infusion", 2)
MILLION = Decimal(1_000_000)
_DOSING = study_definition().dosing
_TOLERANCE = decimal(_DOSING.tolerance)


@dataclass(frozen=True)
class InfusionRules:
    # the infused dose may differ from the assigned level by at most this fraction
    dose_tolerance: Decimal = _TOLERANCE
    # days from the last lymphodepletion day to the infusion day (Flu/Cy typically on the 5th to
    # 3rd day before the infusion; the infusion is study day 0)
    window_min_days: int = _DOSING.lymphodepletion_to_infusion_days.min
    window_max_days: int = _DOSING.lymphodepletion_to_infusion_days.max

    @property
    def version(self) -> str:
        """The rule version with the configured values, recorded with every infusion."""
        return (
            f"{RULE_VERSION};tolerance={self.dose_tolerance};"
            f"window={self.window_min_days}-{self.window_max_days}d"
        )


def level_dose(level: int) -> Decimal:
    """The dose of a dose level, in 10^6 CAR-positive cells/kg, as the study defines it."""
    return study_definition().dose(level)


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
