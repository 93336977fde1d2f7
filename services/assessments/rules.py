"""SLE activity and response rules, from their published definitions (no I/O).

SLEDAI-2K and clinical SLEDAI are computed from the 24 items, never typed in. DORIS
remission, LLDAS and SRI-4 are derived from a visit, the visit before it and the
baseline visit; the response category maps them to complete or partial remission by
the reference's stated assumption (docs/assessments.md). Every result names
``RULE_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shared.kernel.errors import InvalidValue

RULE_VERSION = "NCT05030779-sle-response/1"


class SledaiItem(StrEnum):
    SEIZURE = "seizure"
    PSYCHOSIS = "psychosis"
    ORGANIC_BRAIN_SYNDROME = "organic_brain_syndrome"
    VISUAL_DISTURBANCE = "visual_disturbance"
    CRANIAL_NERVE_DISORDER = "cranial_nerve_disorder"
    LUPUS_HEADACHE = "lupus_headache"
    CEREBROVASCULAR_ACCIDENT = "cerebrovascular_accident"
    VASCULITIS = "vasculitis"
    ARTHRITIS = "arthritis"
    MYOSITIS = "myositis"
    URINARY_CASTS = "urinary_casts"
    HAEMATURIA = "haematuria"
    PROTEINURIA = "proteinuria"
    PYURIA = "pyuria"
    RASH = "rash"
    ALOPECIA = "alopecia"
    MUCOSAL_ULCERS = "mucosal_ulcers"
    PLEURISY = "pleurisy"
    PERICARDITIS = "pericarditis"
    LOW_COMPLEMENT = "low_complement"
    INCREASED_DNA_BINDING = "increased_dna_binding"
    FEVER = "fever"
    THROMBOCYTOPENIA = "thrombocytopenia"
    LEUKOPENIA = "leukopenia"


_I = SledaiItem
# The SLEDAI-2K weights (maximum 105).
WEIGHTS: dict[SledaiItem, int] = {
    **dict.fromkeys(
        (_I.SEIZURE, _I.PSYCHOSIS, _I.ORGANIC_BRAIN_SYNDROME, _I.VISUAL_DISTURBANCE,
         _I.CRANIAL_NERVE_DISORDER, _I.LUPUS_HEADACHE, _I.CEREBROVASCULAR_ACCIDENT,
         _I.VASCULITIS), 8),
    **dict.fromkeys(
        (_I.ARTHRITIS, _I.MYOSITIS, _I.URINARY_CASTS, _I.HAEMATURIA, _I.PROTEINURIA,
         _I.PYURIA), 4),
    **dict.fromkeys(
        (_I.RASH, _I.ALOPECIA, _I.MUCOSAL_ULCERS, _I.PLEURISY, _I.PERICARDITIS,
         _I.LOW_COMPLEMENT, _I.INCREASED_DNA_BINDING), 2),
    **dict.fromkeys((_I.FEVER, _I.THROMBOCYTOPENIA, _I.LEUKOPENIA), 1),
}  # fmt: skip
SEROLOGY = frozenset({_I.LOW_COMPLEMENT, _I.INCREASED_DNA_BINDING})
# LLDAS "no major-organ activity" (Franklyn et al. 2016): renal, central nervous system,
# cardiopulmonary, vasculitis and fever.
MAJOR_ORGAN = frozenset(
    {_I.SEIZURE, _I.PSYCHOSIS, _I.ORGANIC_BRAIN_SYNDROME, _I.VISUAL_DISTURBANCE,
     _I.CRANIAL_NERVE_DISORDER, _I.LUPUS_HEADACHE, _I.CEREBROVASCULAR_ACCIDENT,
     _I.VASCULITIS, _I.URINARY_CASTS, _I.HAEMATURIA, _I.PROTEINURIA, _I.PYURIA,
     _I.PLEURISY, _I.PERICARDITIS, _I.FEVER}
)  # fmt: skip

DORIS_PGA_BELOW = Decimal("0.5")
DORIS_MAX_PREDNISONE_MG = Decimal("5")
LLDAS_MAX_SLEDAI = 4
LLDAS_MAX_PGA = Decimal("1")
LLDAS_MAX_PREDNISONE_MG = Decimal("7.5")
SRI4_MIN_REDUCTION = 4
SRI4_PGA_WORSENING = Decimal("0.3")
SRI4_MAX_NEW_BILAG_B = 1
# Assumption (docs/assessments.md): progression is SLEDAI-2K up by >= 4 from baseline,
# or any new BILAG A: the SRI-4 thresholds read the other way.
PROGRESSION_MIN_INCREASE = 4


class InvalidActivity(InvalidValue, ValueError):
    """A disease-activity visit that cannot be scored."""

    code = "invalid_assessment"


@dataclass(frozen=True)
class Activity:
    """One disease-activity visit: SLEDAI-2K items present, physician's global
    assessment (0-3), prednisone-equivalent dose (mg/day), and what SRI-4 and LLDAS need
    beyond SLEDAI (new BILAG A/B domains against baseline, if scored; whether
    immunosuppression is at standard maintenance doses only)."""

    items_present: frozenset[SledaiItem]
    pga: Decimal
    prednisone_mg_per_day: Decimal
    maintenance_immunosuppression_only: bool
    new_bilag_a: int | None = None
    new_bilag_b: int | None = None

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.pga <= Decimal(3):
            raise InvalidActivity(f"the physician's global assessment is 0-3, not {self.pga}")
        if self.prednisone_mg_per_day < 0:
            raise InvalidActivity("a prednisone-equivalent dose is not negative")
        if any(n is not None and n < 0 for n in (self.new_bilag_a, self.new_bilag_b)):
            raise InvalidActivity("counts of new BILAG domains are not negative")

    @property
    def sledai_2k(self) -> int:
        return sum(WEIGHTS[item] for item in self.items_present)

    @property
    def clinical_sledai(self) -> int:
        return sum(WEIGHTS[item] for item in self.items_present - SEROLOGY)


def items_from(answers: dict[str, bool]) -> frozenset[SledaiItem]:
    """The items present, from an answer for each of the 24 items (no item may be
    missing: an unanswered item is not an absent one)."""
    names = {item.value for item in SledaiItem}
    missing, unknown = sorted(names - answers.keys()), sorted(answers.keys() - names)
    if missing or unknown:
        raise InvalidActivity(f"SLEDAI-2K needs all 24 items: missing {missing}, unknown {unknown}")
    return frozenset(SledaiItem(name) for name, present in answers.items() if present)


def doris(visit: Activity) -> bool:
    """DORIS remission (2021): clinical SLEDAI 0, PGA < 0.5, prednisone <= 5 mg/day."""
    return (
        visit.clinical_sledai == 0
        and visit.pga < DORIS_PGA_BELOW
        and visit.prednisone_mg_per_day <= DORIS_MAX_PREDNISONE_MG
    )


def lldas(visit: Activity, previous: Activity | None) -> bool:
    """LLDAS: SLEDAI-2K <= 4 with no major-organ activity and no new activity since the
    previous visit, PGA <= 1, prednisone <= 7.5 mg/day, maintenance treatment only."""
    new_activity = previous is not None and bool(visit.items_present - previous.items_present)
    return (
        visit.sledai_2k <= LLDAS_MAX_SLEDAI
        and not visit.items_present & MAJOR_ORGAN
        and not new_activity
        and visit.pga <= LLDAS_MAX_PGA
        and visit.prednisone_mg_per_day <= LLDAS_MAX_PREDNISONE_MG
        and visit.maintenance_immunosuppression_only
    )


def sri4(visit: Activity, baseline: Activity) -> bool | None:
    """SRI-4 against baseline: SLEDAI-2K down by >= 4, no new BILAG A, <= 1 new BILAG B,
    PGA not worse by >= 0.3. None when the visit has no BILAG scoring: not evaluable."""
    if visit.new_bilag_a is None or visit.new_bilag_b is None:
        return None
    return (
        baseline.sledai_2k - visit.sledai_2k >= SRI4_MIN_REDUCTION
        and visit.new_bilag_a == 0
        and visit.new_bilag_b <= SRI4_MAX_NEW_BILAG_B
        and visit.pga - baseline.pga < SRI4_PGA_WORSENING
    )


def progressed(visit: Activity, baseline: Activity) -> bool:
    """Progression (assumption): SLEDAI-2K up by >= 4 from baseline, or a new BILAG A."""
    return (
        visit.sledai_2k - baseline.sledai_2k >= PROGRESSION_MIN_INCREASE
        or (visit.new_bilag_a or 0) > 0
    )


class Response(StrEnum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    STABLE = "stable"
    PROGRESSION = "progression"

    @property
    def remission(self) -> bool:
        return self in (Response.COMPLETE, Response.PARTIAL)


@dataclass(frozen=True)
class ResponseDerivation:
    """A response category and every criterion that decided it, with the rule version."""

    response: Response
    sledai_2k: int
    clinical_sledai: int
    baseline_sledai_2k: int
    doris: bool
    lldas: bool
    sri4: bool | None
    progression: bool
    rule_version: str = RULE_VERSION


def derive_response(
    visit: Activity, previous: Activity | None, baseline: Activity
) -> ResponseDerivation:
    """The response category: complete = DORIS; partial = LLDAS or SRI-4 without DORIS;
    progression when the visit meets the progression rule; stable otherwise."""
    met = (doris(visit), lldas(visit, previous), sri4(visit, baseline))
    if met[0]:
        response = Response.COMPLETE
    elif met[1] or met[2]:
        response = Response.PARTIAL
    elif progressed(visit, baseline):
        response = Response.PROGRESSION
    else:
        response = Response.STABLE
    return ResponseDerivation(
        response, visit.sledai_2k, visit.clinical_sledai, baseline.sledai_2k, *met,
        progression=response is Response.PROGRESSION,
    )  # fmt: skip
