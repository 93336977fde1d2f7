"""Grading rules as versioned data: CTCAE v5.0 grades per term, and the ASTCT consensus
grades of CRS and ICANS (Lee et al., Biol Blood Marrow Transplant 2019) computed from
their components (NCI CTCAE v5.0, 27 November 2017; docs/adverse_events.md).

Every graded result stores ``RULE_VERSION``; a change to any table is a new version,
never an edit of this one. The grades say how severe, not why: attribution of fever,
hypotension, hypoxia or a neurological sign to CRS or ICANS rather than to another cause
is the investigator's, recorded before these functions are called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from services.adverse_events.errors import (
    GradeFiveWithoutDeath,
    GradeNotAllowed,
    InvalidGradingInput,
    ReasonRequired,
    ScaleNotForTerm,
)

# /2: each term bound to its grading scale; /3: grade 5 only for an event whose record
# shows the death (check_grade_5)
RULE_VERSION = "NCT05030779-grading/3"

CTCAE_GRADES = frozenset(range(1, 6))
NO_GRADE = 0  # no CRS / no ICANS; never a CTCAE grade


def _grades(lowest: int, highest: int) -> frozenset[int]:
    return frozenset(range(lowest, highest + 1))


# CTCAE v5.0 (NCI, 27 November 2017): the grades each term defines, for terms expected
# after CAR-T in SLE. A SUBSET of CTCAE: a term not listed here allows 1-5 (the general
# definitions), so an unlisted term is never refused, only not checked as closely. Only
# terms whose grade range we are sure of are listed; add a term in a new RULE_VERSION.
CTCAE_TERMS: Mapping[str, frozenset[int]] = {
    # immune effector toxicity and infusion (CRS and ICANS: ASTCT_TERMS, below)
    "Infusion related reaction": _grades(1, 5),
    "Fever": _grades(1, 5),  # 1: 38.0-39.0 C ... 4: > 40.0 C for > 24 h, 5: death
    "Chills": _grades(1, 3),
    "Fatigue": _grades(1, 3),
    # blood and lymphatic system
    "Anemia": _grades(1, 5),  # 4: life-threatening, urgent intervention; 5: death
    "Febrile neutropenia": _grades(3, 5),
    "Disseminated intravascular coagulation": _grades(2, 5),
    # investigations (laboratory terms stop at 4: death is recorded under a clinical term)
    "Neutrophil count decreased": _grades(1, 4),
    "Platelet count decreased": _grades(1, 4),
    "Lymphocyte count decreased": _grades(1, 4),
    "White blood cell decreased": _grades(1, 4),
    "Fibrinogen decreased": _grades(1, 4),
    "Alanine aminotransferase increased": _grades(1, 4),
    "Aspartate aminotransferase increased": _grades(1, 4),
    "Blood bilirubin increased": _grades(1, 4),
    "Creatinine increased": _grades(1, 4),
    # cardiovascular and respiratory
    "Hypotension": _grades(1, 5),
    "Sinus tachycardia": _grades(1, 3),
    "Hypoxia": _grades(2, 4),  # 2: desaturation on exertion; 3: at rest; 4: life-threatening
    # infections (CTCAE v5 infection terms start at grade 2)
    "Lung infection": _grades(2, 5),
    "Upper respiratory infection": _grades(2, 5),
    "Urinary tract infection": _grades(2, 5),
    "Sepsis": _grades(3, 5),
    # nervous system (ICANS itself is graded by ASTCT, below)
    "Encephalopathy": _grades(1, 5),
    "Seizure": _grades(1, 5),
    "Tremor": _grades(1, 3),
    "Headache": _grades(1, 3),
    "Edema cerebral": _grades(4, 5),
    # gastrointestinal and skin
    "Nausea": _grades(1, 3),
    "Vomiting": _grades(1, 5),
    "Diarrhea": _grades(1, 5),
    "Alopecia": _grades(1, 2),
}


def term_key(term: str) -> str:
    """Compare CTCAE terms leniently: case and runs of spaces do not matter."""
    return " ".join(term.split()).casefold()


_TERMS_BY_KEY: Mapping[str, frozenset[int]] = {term_key(t): g for t, g in CTCAE_TERMS.items()}


class Scale(StrEnum):
    """The scale a term is graded by; recorded with every grade."""

    CTCAE = "CTCAE"
    ASTCT_CRS = "ASTCT-CRS"
    ASTCT_ICANS = "ASTCT-ICANS"


# The terms graded by the ASTCT consensus (Lee et al. 2019), from their components only:
# CTCAE v5.0's own CRS grades are replaced by ASTCT's, and ICANS is not a CTCAE term. Every
# other term is graded by CTCAE v5.0. A term and a scale that do not belong together (a
# headache given CRS components, CRS given a plain grade) are refused.
ASTCT_TERMS: Mapping[str, Scale] = {
    "Cytokine release syndrome": Scale.ASTCT_CRS,
    "CRS": Scale.ASTCT_CRS,
    "Immune effector cell-associated neurotoxicity syndrome": Scale.ASTCT_ICANS,
    "ICANS": Scale.ASTCT_ICANS,
}
_SCALES_BY_KEY: Mapping[str, Scale] = {term_key(t): s for t, s in ASTCT_TERMS.items()}


def scale_of(term: str) -> Scale:
    """The scale the term is graded by: ASTCT for CRS and ICANS, CTCAE v5.0 otherwise."""
    return _SCALES_BY_KEY.get(term_key(term), Scale.CTCAE)


def check_scale(term: str, given: Scale) -> None:
    """ScaleNotForTerm unless the grading given is the one the term is graded by."""
    expected = scale_of(term)
    if given is not expected:
        how = {
            Scale.CTCAE: "a CTCAE v5.0 grade",
            Scale.ASTCT_CRS: "the ASTCT CRS components (crs)",
            Scale.ASTCT_ICANS: "the ASTCT ICANS components (icans)",
        }
        raise ScaleNotForTerm(
            f"{term!r} is graded by {how[expected]}, not by {how[given]}",
            term=term,
            scale=expected.value,
            given=given.value,
        )


def allowed_grades(term: str) -> frozenset[int]:
    """The grades CTCAE v5.0 defines for the term; 1-5 for a term not in the table."""
    return _TERMS_BY_KEY.get(term_key(term), CTCAE_GRADES)


def check_ctcae_grade(term: str, grade: int) -> int:
    """The grade, if CTCAE v5.0 allows it for the term; else GradeNotAllowed.

    A grade is an integer from 1 to 5, and one that the term defines (``CTCAE_TERMS``).
    """
    if not term.strip():
        raise InvalidGradingInput("the CTCAE term is empty", term=term)
    allowed = allowed_grades(term)
    if isinstance(grade, bool) or not isinstance(grade, int) or grade not in allowed:
        listed = ", ".join(str(g) for g in sorted(allowed))
        raise GradeNotAllowed(
            f"{term}: grade {grade!r} is not a CTCAE v5.0 grade of this term (allowed: {listed})",
            term=term,
            grade=grade,
            allowed=sorted(allowed),
        )
    return grade


DEATH = 5  # CTCAE v5.0 and ASTCT: death related to the adverse event


def check_grade_5(term: str, grade: int, death_recorded: bool) -> None:
    """GradeFiveWithoutDeath for a grade 5 when the record shows no death (the seriousness
    assessment's death flag, or the ASTCT components' death from CRS or ICANS)."""
    if grade == DEATH and not death_recorded:
        raise GradeFiveWithoutDeath(
            f"{term}: grade 5 is death related to the event, and its record shows no death; "
            "record the seriousness (death) first",
            term=term,
            grade=grade,
            death_recorded=False,
        )


# ---------------------------------------------------------------------------------------
# ASTCT cytokine release syndrome
# ---------------------------------------------------------------------------------------

FEVER_C = Decimal("38.0")
TEMPERATURE_MIN_C = Decimal(30)
TEMPERATURE_MAX_C = Decimal(45)
LOW_FLOW_MAX_L_MIN = Decimal(6)  # nasal cannula <= 6 L/min is low flow, > 6 L/min high flow
FLOW_MAX_L_MIN = Decimal(80)  # above any nasal cannula, high-flow devices included


class Hypotension(StrEnum):
    """Hypotension attributed to CRS, by what it needs."""

    NONE = "none"
    NO_VASOPRESSOR = "no_vasopressor"  # responds to fluids
    ONE_VASOPRESSOR = "one_vasopressor"  # with or without vasopressin
    MULTIPLE_VASOPRESSORS = "multiple_vasopressors"  # vasopressin not counted


class Oxygen(StrEnum):
    """Oxygen needed for hypoxia attributed to CRS, by device."""

    NONE = "none"
    LOW_FLOW = "low_flow"  # nasal cannula <= 6 L/min, or blow-by
    HIGH_FLOW = "high_flow"  # nasal cannula > 6 L/min, face mask, non-rebreather, Venturi
    POSITIVE_PRESSURE = "positive_pressure"  # CPAP, BiPAP, intubation, mechanical ventilation


HYPOTENSION_GRADE: Mapping[Hypotension, int] = {
    Hypotension.NONE: 0,
    Hypotension.NO_VASOPRESSOR: 2,
    Hypotension.ONE_VASOPRESSOR: 3,
    Hypotension.MULTIPLE_VASOPRESSORS: 4,
}
OXYGEN_GRADE: Mapping[Oxygen, int] = {
    Oxygen.NONE: 0,
    Oxygen.LOW_FLOW: 2,
    Oxygen.HIGH_FLOW: 3,
    Oxygen.POSITIVE_PRESSURE: 4,
}


class CrsComponent(StrEnum):
    """What decided a CRS grade."""

    DEATH = "death_from_crs"
    FEVER = "fever"
    HYPOTENSION = "hypotension"
    HYPOXIA = "hypoxia"
    NO_FEVER = "no_fever"  # no fever and none masked by treatment: not CRS
    NONE = "none"  # fever masked by treatment, but no hypotension or hypoxia


def oxygen_by_nasal_cannula(flow_l_min: Decimal) -> Oxygen:
    """Oxygen by nasal cannula: low flow up to and including 6 L/min, high flow above."""
    if (
        not isinstance(flow_l_min, Decimal)
        or not flow_l_min.is_finite()
        or not Decimal(0) < flow_l_min <= FLOW_MAX_L_MIN
    ):
        raise InvalidGradingInput(
            f"oxygen flow {flow_l_min!r} L/min is not valid, expects > 0 and <= {FLOW_MAX_L_MIN}",
            oxygen_flow_l_min=str(flow_l_min),
        )
    return Oxygen.LOW_FLOW if flow_l_min <= LOW_FLOW_MAX_L_MIN else Oxygen.HIGH_FLOW


@dataclass(frozen=True)
class CrsInputs:
    """The components of one ASTCT CRS grading: the highest temperature, whether
    antipyretics, tocilizumab or steroids had been given (fever is then no longer
    required), the worst hypotension and the most oxygen needed, and death from CRS."""

    temperature_c: Decimal
    antipyretics_or_immunosuppression_given: bool
    hypotension: Hypotension
    oxygen: Oxygen
    death_from_crs: bool = False

    def __post_init__(self) -> None:
        t = self.temperature_c
        if (
            not isinstance(t, Decimal)
            or not t.is_finite()
            or not TEMPERATURE_MIN_C <= t <= TEMPERATURE_MAX_C
        ):
            raise InvalidGradingInput(
                f"temperature {t!r} °C is not valid, expects {TEMPERATURE_MIN_C}-"
                f"{TEMPERATURE_MAX_C} °C",
                temperature_c=str(t),
            )

    @property
    def fever(self) -> bool:
        """Fever is a temperature >= 38.0 °C."""
        return self.temperature_c >= FEVER_C


@dataclass(frozen=True)
class CrsGrade:
    """An ASTCT CRS grade (0 = no CRS) and the component that decided it; when
    hypotension and hypoxia give the same grade both are named (``hypotension+hypoxia``)."""

    grade: int
    by: str
    rule_version: str = RULE_VERSION


def grade_crs_explained(inputs: CrsInputs) -> CrsGrade:
    """ASTCT CRS grade with the component that decided it.

    - Death from CRS is grade 5.
    - Without fever (>= 38.0 °C), and with no antipyretic, tocilizumab or steroid given to
      mask it, there is no CRS (0), whatever the blood pressure and oxygen.
    - Otherwise the grade is the worse of hypotension (fluids only 2, one vasopressor 3,
      several 4) and hypoxia (low flow 2, high flow 3, positive pressure 4); fever alone
      is grade 1. After treatment, without fever and with neither, the grade is 0.
    """
    if inputs.death_from_crs:
        return CrsGrade(5, CrsComponent.DEATH)
    if not inputs.fever and not inputs.antipyretics_or_immunosuppression_given:
        return CrsGrade(NO_GRADE, CrsComponent.NO_FEVER)
    hypotension = HYPOTENSION_GRADE[inputs.hypotension]
    hypoxia = OXYGEN_GRADE[inputs.oxygen]
    worst = max(hypotension, hypoxia)
    if worst == 0:
        if inputs.fever:
            return CrsGrade(1, CrsComponent.FEVER)
        return CrsGrade(NO_GRADE, CrsComponent.NONE)
    deciding = [
        component
        for component, grade in (
            (CrsComponent.HYPOTENSION, hypotension),
            (CrsComponent.HYPOXIA, hypoxia),
        )
        if grade == worst
    ]
    return CrsGrade(worst, "+".join(deciding))


def grade_crs(inputs: CrsInputs) -> int:
    """ASTCT CRS grade, 0 (no CRS) to 5; see ``grade_crs_explained``."""
    return grade_crs_explained(inputs).grade


# ---------------------------------------------------------------------------------------
# ASTCT immune effector cell-associated neurotoxicity syndrome (adults)
# ---------------------------------------------------------------------------------------

ICE_MAX = 10
# ICE score bands: (lowest, highest, grade). ICE 0 in an unarousable patient is grade 4,
# which the consciousness domain gives; the ICE domain alone stops at 3.
ICE_BANDS: tuple[tuple[int, int, int], ...] = ((10, 10, 0), (7, 9, 1), (3, 6, 2), (0, 2, 3))
# ICE parts: (name, maximum points)
ICE_PARTS: tuple[tuple[str, int], ...] = (
    ("orientation", 4),  # year, month, city, hospital
    ("naming", 3),  # names 3 objects
    ("command", 1),  # follows a simple command
    ("writing", 1),  # writes a standard sentence
    ("attention", 1),  # counts back from 100 by 10
)


class Consciousness(StrEnum):
    """Level of consciousness attributed to ICANS (ASTCT's depressed-consciousness domain)."""

    AWAKE = "awake"  # alert, not depressed: grade 0
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously"  # drowsy, wakes on their own: 1
    AWAKENS_TO_VOICE = "awakens_to_voice"  # 2
    AWAKENS_TO_TOUCH = "awakens_to_touch"  # only to tactile stimulus: 3
    UNAROUSABLE = "unarousable"  # or needs vigorous/repetitive touch; stupor, coma: 4


class Seizure(StrEnum):
    """Seizures attributed to ICANS."""

    NONE = "none"
    # any clinical seizure, focal or generalised, that resolves rapidly, or
    # non-convulsive seizures on EEG that resolve with intervention: 3
    RESOLVED_RAPIDLY = "resolved_rapidly"
    # life-threatening prolonged seizure (> 5 min), or repetitive clinical or electrical
    # seizures without return to baseline in between: 4
    PROLONGED_OR_REPEATED = "prolonged_or_repeated"


class Motor(StrEnum):
    """Motor findings attributed to ICANS (tremor and myoclonus are graded by CTCAE)."""

    NONE = "none"
    DEEP_FOCAL_WEAKNESS = "deep_focal_weakness"  # hemiparesis, paraparesis: 4


class RaisedIcp(StrEnum):
    """Raised intracranial pressure or cerebral oedema attributed to ICANS."""

    NONE = "none"
    FOCAL_OEDEMA = "focal_oedema"  # focal or local oedema on neuroimaging: 3
    # diffuse cerebral oedema on neuroimaging, decerebrate or decorticate posturing,
    # cranial nerve VI palsy, papilloedema, or Cushing's triad: 4
    DIFFUSE_OEDEMA_OR_SIGNS = "diffuse_oedema_or_signs"


CONSCIOUSNESS_GRADE: Mapping[Consciousness, int] = {
    Consciousness.AWAKE: 0,
    Consciousness.AWAKENS_SPONTANEOUSLY: 1,
    Consciousness.AWAKENS_TO_VOICE: 2,
    Consciousness.AWAKENS_TO_TOUCH: 3,
    Consciousness.UNAROUSABLE: 4,
}
SEIZURE_GRADE: Mapping[Seizure, int] = {
    Seizure.NONE: 0,
    Seizure.RESOLVED_RAPIDLY: 3,
    Seizure.PROLONGED_OR_REPEATED: 4,
}
MOTOR_GRADE: Mapping[Motor, int] = {Motor.NONE: 0, Motor.DEEP_FOCAL_WEAKNESS: 4}
RAISED_ICP_GRADE: Mapping[RaisedIcp, int] = {
    RaisedIcp.NONE: 0,
    RaisedIcp.FOCAL_OEDEMA: 3,
    RaisedIcp.DIFFUSE_OEDEMA_OR_SIGNS: 4,
}


class IcansDomain(StrEnum):
    """The ASTCT ICANS domains, in the table's order, and death from ICANS."""

    ICE = "ice"
    CONSCIOUSNESS = "consciousness"
    SEIZURE = "seizure"
    MOTOR = "motor"
    RAISED_ICP = "raised_icp"
    DEATH = "death_from_icans"


def ice_score(orientation: int, naming: int, command: int, writing: int, attention: int) -> int:
    """The ICE score, 0-10: orientation 0-4, naming 0-3, command, writing and attention
    0-1 each. A part outside its range is InvalidGradingInput."""
    points = (orientation, naming, command, writing, attention)
    for (name, maximum), value in zip(ICE_PARTS, points, strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise InvalidGradingInput(
                f"ICE {name} {value!r} is not valid, expects 0-{maximum}", part=name, value=value
            )
    return sum(points)


def ice_grade(score: int | None) -> int:
    """The ICE domain's grade: 10 -> 0, 7-9 -> 1, 3-6 -> 2, 0-2 -> 3; not assessable
    (None) -> 0, so that the other domains, consciousness first, decide."""
    if score is None:
        return 0
    for lowest, highest, grade in ICE_BANDS:
        if lowest <= score <= highest:
            return grade
    raise InvalidGradingInput(f"ICE score {score!r} is not valid, expects 0-10", ice_score=score)


@dataclass(frozen=True)
class IcansInputs:
    """The components of one ASTCT ICANS grading (adults). ``ice_score`` is None when
    the ICE cannot be assessed (an unarousable patient, say): consciousness decides."""

    ice_score: int | None
    consciousness: Consciousness
    seizure: Seizure
    motor: Motor
    raised_icp: RaisedIcp
    # Lee et al. define grade 5 for ICANS as for CRS: death due to it, no other cause the
    # principal one (the consensus's ICANS table itself shows grades 1-4).
    death_from_icans: bool = False

    def __post_init__(self) -> None:
        score = self.ice_score
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= ICE_MAX
        ):
            raise InvalidGradingInput(
                f"ICE score {score!r} is not valid, expects 0-{ICE_MAX} or not assessed",
                ice_score=score,
            )


@dataclass(frozen=True)
class IcansGrade:
    """An ASTCT ICANS grade (0 = no ICANS) and the domains that decided it, joined by
    ``+`` in the table's order (``ice+consciousness``), or ``none``."""

    grade: int
    by: str
    rule_version: str = RULE_VERSION


def grade_icans_explained(inputs: IcansInputs) -> IcansGrade:
    """ASTCT ICANS grade (adults): the worst of the ICE score, consciousness, seizure,
    motor and raised-ICP domains, with the domains that reached it. ICE 0 in an awake
    patient (global aphasia) is grade 3; an unarousable patient is grade 4. Death from
    ICANS is grade 5."""
    if inputs.death_from_icans:
        return IcansGrade(5, IcansDomain.DEATH)
    domains = (
        (IcansDomain.ICE, ice_grade(inputs.ice_score)),
        (IcansDomain.CONSCIOUSNESS, CONSCIOUSNESS_GRADE[inputs.consciousness]),
        (IcansDomain.SEIZURE, SEIZURE_GRADE[inputs.seizure]),
        (IcansDomain.MOTOR, MOTOR_GRADE[inputs.motor]),
        (IcansDomain.RAISED_ICP, RAISED_ICP_GRADE[inputs.raised_icp]),
    )
    worst = max(grade for _, grade in domains)
    if worst == 0:
        return IcansGrade(NO_GRADE, "none")
    return IcansGrade(worst, "+".join(domain for domain, grade in domains if grade == worst))


def grade_icans(inputs: IcansInputs) -> int:
    """ASTCT ICANS grade, 0 (no ICANS) to 5; see ``grade_icans_explained``."""
    return grade_icans_explained(inputs).grade


# ---------------------------------------------------------------------------------------
# Manual grades
# ---------------------------------------------------------------------------------------


def check_manual_grade(computed: int, manual: int, reason: str | None) -> None:
    """A manual grade may differ from the computed one only with a reason (not blank)."""
    for name, grade in (("computed", computed), ("manual", manual)):
        if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= 5:
            raise InvalidGradingInput(
                f"{name} grade {grade!r} is not valid, expects 0-5", **{name: grade}
            )
    if manual != computed and (reason is None or not reason.strip()):
        raise ReasonRequired(
            f"manual grade {manual} differs from the computed grade {computed}: give a reason",
            computed=computed,
            manual=manual,
        )
