"""Autoantibody, complement and CAR-T kinetics measurements: units, ranges, LLOQ (no I/O).

A value is stored as entered and also in the analyte's canonical unit, so that time
courses compare like with like. The unit is checked against the analyte or the method:
a qPCR result is copies/ug genomic DNA, a flow-cytometry count is cells/uL.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shared.kernel.errors import InvalidValue

RULE_VERSION = "NCT05030779-laboratory/1"


class InvalidMeasurement(InvalidValue, ValueError):
    """A measurement whose unit, range or value cannot be right."""

    code = "invalid_assessment"


class Analyte(StrEnum):
    ANTI_DSDNA = "anti_dsdna"
    ANA = "ana"
    C3 = "c3"
    C4 = "c4"


# analyte -> {unit as entered: factor to the canonical unit (the first)}
UNITS: dict[Analyte, dict[str, Decimal]] = {
    Analyte.ANTI_DSDNA: {"IU/mL": Decimal(1)},
    # a titre is the reciprocal of the last positive dilution: 1:320 is entered as 320
    Analyte.ANA: {"titre": Decimal(1)},
    Analyte.C3: {"g/L": Decimal(1), "mg/dL": Decimal("0.01")},
    Analyte.C4: {"g/L": Decimal(1), "mg/dL": Decimal("0.01")},
}


def _normalised_unit(unit: str) -> str:
    return unit.strip().replace("µ", "u").replace("μ", "u")


@dataclass(frozen=True)
class ReferenceRange:
    low: Decimal | None
    high: Decimal | None

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise InvalidMeasurement("a reference range has a low or a high limit")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise InvalidMeasurement(f"reference range {self.low}-{self.high} is empty")

    def flag(self, value: Decimal) -> str:
        if self.low is not None and value < self.low:
            return "low"
        if self.high is not None and value > self.high:
            return "high"
        return "normal"


@dataclass(frozen=True)
class AutoantibodyResult:
    """One analyte's result, as entered and in the canonical unit, flagged against its
    reference range."""

    analyte: Analyte
    value: Decimal
    unit: str
    reference: ReferenceRange
    canonical_value: Decimal
    canonical_unit: str
    flag: str


def autoantibody_result(
    analyte: Analyte, value: Decimal, unit: str, reference: ReferenceRange
) -> AutoantibodyResult:
    units = UNITS[analyte]
    if unit not in units:
        raise InvalidMeasurement(f"{analyte} is measured in {sorted(units)}, not {unit!r}")
    if value < 0:
        raise InvalidMeasurement(f"{analyte} {value} {unit} is negative")
    factor, canonical = units[unit], next(iter(units))
    return AutoantibodyResult(
        analyte, value, unit, reference, value * factor, canonical, reference.flag(value)
    )


class Sample(StrEnum):
    PERIPHERAL_BLOOD = "peripheral_blood"
    BONE_MARROW = "bone_marrow"


class Method(StrEnum):
    QPCR = "qpcr"
    FLOW_CYTOMETRY = "flow_cytometry"


class Target(StrEnum):
    """The CAR-T target an assay measured: CD19 or BCMA (where a study co-infuses both,
    assays may tell them apart), or their total."""

    CD19 = "cd19"
    BCMA = "bcma"
    TOTAL = "total"


METHOD_UNITS: dict[Method, str] = {
    Method.QPCR: "copies/ug gDNA",
    Method.FLOW_CYTOMETRY: "cells/uL",
}


@dataclass(frozen=True)
class KineticsSample:
    """A CAR-T concentration: sample, method, CAR target, value, unit, and the assay's
    lower limit of quantification. A value under the LLOQ is kept, and flagged."""

    sample: Sample
    method: Method
    target: Target
    value: Decimal
    unit: str
    lloq: Decimal

    @property
    def below_lloq(self) -> bool:
        return self.value < self.lloq


def kinetics_sample(
    sample: Sample, method: Method, target: Target, value: Decimal, unit: str, lloq: Decimal
) -> KineticsSample:
    unit = _normalised_unit(unit)
    if unit != METHOD_UNITS[method]:
        raise InvalidMeasurement(f"{method} results are in {METHOD_UNITS[method]!r}, not {unit!r}")
    if value < 0 or lloq <= 0:
        raise InvalidMeasurement("a concentration is not negative and an LLOQ is positive")
    return KineticsSample(sample, method, target, value, unit, lloq)
