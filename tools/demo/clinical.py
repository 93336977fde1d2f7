"""The clinical values of the demo trial, drawn from a seeded ``random.Random`` (no I/O).

Each function draws within a range that cannot change what the story decides: screening
values stay eligible (or fail on the one criterion meant to fail), CRS components give
the grade asked for, SLEDAI-2K items give the response category asked for, and lab
values agree with the serology items of the same visit. So a seed changes the numbers,
never the outcomes; the same seed gives the same numbers.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

Json = dict[str, Any]

SEROLOGY = ("low_complement", "increased_dna_binding")
BASELINE_CORE = frozenset({"arthritis", "rash", *SEROLOGY})  # SLEDAI-2K 12
BASELINE_EXTRA = ("alopecia", "mucosal_ulcers", "proteinuria", "haematuria", "pleurisy")
LLDAS_ALLOWED = frozenset({"rash", *SEROLOGY})  # no major organ; 2 each
STABLE_ITEMS = frozenset({"arthritis", *SEROLOGY})  # SLEDAI-2K 8: not LLDAS, not DORIS
LLOQ = "50"  # copies/ug gDNA, the qPCR assay's lower limit of quantification


def _decimal(rng: random.Random, low: float, high: float, places: int = 1) -> str:
    return str(round(Decimal(rng.uniform(low, high)), places))


def screening(
    rng: random.Random, screened_on: date, platelets_fail: bool = False
) -> dict[str, Json]:
    """Every criterion of the enrollment service, each comfortably eligible; with
    ``platelets_fail`` the platelet count is under the protocol's 30 x10^9/L."""
    labs_on = screened_on - timedelta(days=1)

    def observed(value: Any, unit: str | None = None, uln: str | None = None) -> Json:
        day = labs_on if unit else screened_on
        return {"value": value, "unit": unit, "upper_limit_normal": uln,
                "observed_on": day.isoformat()}  # fmt: skip

    platelets = rng.randint(14, 27) if platelets_fail else rng.randint(120, 320)
    creatinine = (
        observed(_decimal(rng, 0.5, 1.1), "mg/dL")
        if rng.random() < 0.5
        else observed(str(rng.randint(45, 95)), "umol/L")
    )
    last_steroid = screened_on - timedelta(days=rng.randint(21, 60))
    return {
        "cd19_bcma_positive": observed(True),
        "refractory_disease": observed(True),
        "estimated_survival": observed(str(rng.randint(52, 260)), "weeks"),
        "pregnancy_test": observed("negative" if rng.random() < 0.8 else "not_applicable"),
        "contraception_agreed": observed(True),
        "platelets": observed(str(platelets), "10^9/L"),
        "lymphocytes_absolute": observed(_decimal(rng, 1.1, 2.6), "10^9/L"),
        "cns_history": observed(False),
        "heart_disease_or_prolonged_qt": observed(False),
        "pregnant_or_lactating": observed(False),
        "severe_active_infection": observed(False),
        "active_hepatitis_b_or_c": observed(False),
        "hiv_infection": observed(False),
        "systemic_steroids": observed(last_steroid.isoformat()),
        "creatinine": creatinine,
        "alt": observed(str(rng.randint(10, 38)), "U/L", "40"),
        "ast": observed(str(rng.randint(10, 36)), "U/L", "40"),
        "bilirubin": observed(_decimal(rng, 0.3, 1.0), "mg/dL"),
        "other_uncontrolled_disease": observed(False),
        "investigator_judged_risk": observed(False),
    }


def misplaced_decimal(observation: Json) -> Json:
    """The observation as a coordinator mistyped it: the decimal point one place off
    (x10), which makes creatinine read as exclusionary until it is corrected."""
    return {**observation, "value": str(Decimal(observation["value"]) * 10)}


def weight_kg(rng: random.Random) -> Decimal:
    return round(Decimal(rng.uniform(45, 72)), 1)


def lot_cells(rng: random.Random, level: int, weight: Decimal) -> tuple[int, int]:
    """Viable CAR+ cells of the CD19 and the BCMA lot: together ``level`` x10^6/kg within
    4% (the infusion service allows 10%), split about evenly."""
    total = Decimal(level) * weight * 1_000_000 * Decimal(rng.uniform(0.96, 1.04))
    cd19 = int(round(total * Decimal(rng.uniform(0.45, 0.55)), -5))
    return cd19, int(round(total, -5)) - cd19


def release(rng: random.Random) -> Json:
    return {"car_positive_percent": _decimal(rng, 25, 55),
            "viability_percent": _decimal(rng, 88, 97)}  # fmt: skip


def crs_components(rng: random.Random, grade: int) -> Json:
    """ASTCT CRS components that grade to ``grade`` (1-4)."""
    hypotension, oxygen = "none", "none"
    if grade == 2:
        hypotension, oxygen = rng.choice(
            [("no_vasopressor", "none"), ("none", "low_flow"), ("no_vasopressor", "low_flow")]
        )
    elif grade == 3:
        hypotension, oxygen = "one_vasopressor", rng.choice(["none", "low_flow"])
    elif grade >= 4:
        hypotension, oxygen = "multiple_vasopressors", "high_flow"
    return {
        "temperature_c": _decimal(rng, 38.1, 39.4 if grade == 1 else 40.2),
        "antipyretics_or_immunosuppression_given": False,
        "hypotension": hypotension,
        "oxygen": oxygen,
    }


def baseline_items(rng: random.Random) -> frozenset[str]:
    """Active refractory SLE: arthritis, rash and active serology, and up to two more."""
    extra = rng.sample(BASELINE_EXTRA, rng.randint(0, 2))
    return BASELINE_CORE | frozenset(extra)


def visit_items(rng: random.Random, response: str, previous: frozenset[str]) -> frozenset[str]:
    """SLEDAI-2K items present at a visit whose derived response is ``response``.

    complete (DORIS): serology at most. partial (LLDAS, not DORIS): at most two of rash
    and serology, none new since the previous visit (the PGA keeps it from DORIS).
    stable: arthritis and serology, SLEDAI-2K 8, below any baseline."""
    if response == "complete":
        return frozenset(item for item in SEROLOGY if rng.random() < 0.4)
    if response == "partial":
        candidates = sorted(previous & LLDAS_ALLOWED)
        return frozenset(rng.sample(candidates, rng.randint(0, min(2, len(candidates)))))
    if response == "stable":
        return STABLE_ITEMS
    raise ValueError(f"the demo story has no {response!r} visits")


def global_assessment(rng: random.Random, response: str | None) -> tuple[str, str]:
    """(PGA, prednisone mg/day) that fit the category: DORIS needs PGA < 0.5 and <= 5 mg,
    LLDAS PGA <= 1 and <= 7.5 mg; a partial visit keeps PGA >= 0.5 (so not DORIS)."""
    if response == "complete":
        return rng.choice(["0", "0.2", "0.3"]), rng.choice(["0", "2.5", "5"])
    if response == "partial":
        return rng.choice(["0.5", "0.8", "1"]), rng.choice(["5", "7.5"])
    if response == "stable":
        return rng.choice(["1", "1.2", "1.5"]), "10"
    return rng.choice(["1.5", "2", "2.5"]), rng.choice(["7.5", "10", "15"])  # baseline


def autoantibodies(rng: random.Random, items: frozenset[str], ana_titre: int) -> list[Json]:
    """anti-dsDNA, C3, C4 and ANA that agree with the visit's serology items."""
    dna_high = "increased_dna_binding" in items
    complement_low = "low_complement" in items
    return [
        {"analyte": "anti_dsdna", "value": str(rng.randint(120, 480) if dna_high
                                                 else rng.randint(5, 90)),
         "unit": "IU/mL", "reference_high": "100"},
        {"analyte": "c3", "value": str(rng.randint(45, 85) if complement_low
                                         else rng.randint(92, 140)),
         "unit": "mg/dL", "reference_low": "90", "reference_high": "180"},
        {"analyte": "c4", "value": str(rng.randint(3, 9) if complement_low
                                         else rng.randint(11, 30)),
         "unit": "mg/dL", "reference_low": "10", "reference_high": "40"},
        {"analyte": "ana", "value": str(ana_titre), "unit": "titre", "reference_high": "80"},
    ]  # fmt: skip


# Sampling days after the infusion (the study days; the infusion is day 0): peripheral
# blood weekly to the peak, then at months 1, 3 and 6; bone marrow at months 1 and 3.
BLOOD_DAYS = (7, 14, 28, 89, 180)
MARROW_DAYS = (28, 89)


def blood_kinetics(rng: random.Random) -> dict[int, int]:
    """copies/ug gDNA by days after the infusion: expansion, peak, contraction, and
    persistence that may fall under the LLOQ by month 6."""
    peak = 10 ** rng.uniform(4.0, 5.3)
    factors = {
        7: rng.uniform(0.25, 0.8),
        14: 1.0,
        28: 10 ** -rng.uniform(0.8, 1.4),
        89: 10 ** -rng.uniform(2.0, 2.8),
        180: 10 ** -rng.uniform(2.9, 4.2),
    }
    return {day: max(1, round(peak * factor)) for day, factor in factors.items()}


def marrow_kinetics(rng: random.Random, blood: dict[int, int]) -> dict[int, int]:
    """Bone marrow carries a fraction of the blood level of the same day."""
    return {day: max(1, round(blood[day] * rng.uniform(0.1, 0.6))) for day in MARROW_DAYS}
