"""Infusion rules as versioned data (assumptions until the full protocol says otherwise;
docs/infusion.md names them)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

RULE_VERSION = "NCT05030779-infusion/1"
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class InfusionRules:
    # the infused dose may differ from the assigned level by at most this fraction
    dose_tolerance: Decimal = Decimal("0.10")
    # days from the last lymphodepletion day to the infusion day (Flu/Cy typically on the 5th to
    # 3rd day before the infusion; the infusion is study day 1)
    window_min_days: int = 2
    window_max_days: int = 14

    @property
    def version(self) -> str:
        """The rule version with the configured values, recorded with every infusion."""
        return (
            f"{RULE_VERSION};tolerance={self.dose_tolerance};"
            f"window={self.window_min_days}-{self.window_max_days}d"
        )


def cells_per_kg_millions(total_cells: Decimal, weight_kg: Decimal) -> Decimal:
    """Viable CAR-positive cells per kg of body weight, in millions, to 0.001."""
    return (total_cells / weight_kg / MILLION).quantize(Decimal("0.001"))


def within_tolerance(actual: Decimal, target: Decimal, tolerance: Decimal) -> bool:
    """|actual - target| <= tolerance x target (edges included)."""
    return abs(actual - target) <= tolerance * target
