"""NCT05030779's study facts that the SDTM trial design domains (TA, TE, TS) state and
the ledger's events do not: one table, pure data (docs/exports.md, Trial design).

The facts are the trial's registration (ClinicalTrials.gov NCT05030779; DESIGN.md): a
fact the record does not give is ``None`` here and a null flavour in TS, never a guess.
What the ledger does know (the subjects enrolled, the first consent, the cut of an
export) is derived from the entries by ``services.projections.sdtm``, not written here.

This table is to be read from the study's definition file (``studies/NCT05030779/
definition.json``, through the shared study loader being built beside this change) once
that exists; until then it is the one place these facts are written.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrialFacts:
    """What the protocol's registration says of the trial, in CDISC's words where CDISC
    has a codelist for it (SEXPOP, TBLIND, INTMODEL, STYPE, TTYPE, TINDTP)."""

    study_id: str
    title: str
    registry: str  # the registry that issued ``study_id``
    sponsor: str
    indication: str
    indication_snomed: str  # SNOMED CT concept of the indication
    treatment: str
    country: str  # ISO 3166-1 alpha-3 of every site
    planned_subjects: int
    dose_levels: tuple[int, ...]
    dose_per_level: tuple[float, ...]  # in ``dose_unit``, one per dose level
    dose_unit: str
    route: str
    sex_population: str
    study_type: str
    intervention_model: str
    trial_types: tuple[str, ...]
    intent: str
    blinding: str
    randomised: bool
    control: str
    healthy_subjects: bool
    follow_up_years: int  # the longest outcome window after the infusion
    phase: str | None = None  # not in the registration record read
    minimum_age: str | None = None  # ISO 8601 duration; not in the record read
    maximum_age: str | None = None
    added_on: bool | None = None  # the record does not say whether CAR-T adds to therapy


NCT05030779 = TrialFacts(
    study_id="NCT05030779",
    title=(
        "A Study of CD19/BCMA Chimeric Antigen Receptor T Cells Therapy for Patients With "
        "Refractory Systemic Lupus Erythematosus"
    ),
    registry="ClinicalTrials.gov",
    sponsor="Zhejiang University",
    indication="Systemic Lupus Erythematosus",
    indication_snomed="55464009",
    treatment="CD19/BCMA CAR-T CELLS",
    country="CHN",  # one site: the First Affiliated Hospital, Zhejiang University, Hangzhou
    planned_subjects=9,
    dose_levels=(1, 2, 3, 4),
    dose_per_level=(1.0, 2.0, 3.0, 4.0),  # "dose levels of 1-4*10E6/kg"
    dose_unit="10^6 cells/kg",
    route="INTRAVENOUS",
    sex_population="BOTH",  # "Sex: All"
    study_type="INTERVENTIONAL",
    intervention_model="SINGLE GROUP",  # "Study Design: SINGLE_GROUP"
    trial_types=("SAFETY", "EFFICACY"),  # primary: DLT, TEAEs; secondary: response
    intent="TREATMENT",
    blinding="OPEN LABEL",  # single group, the dose level known to all (assumption)
    randomised=False,
    control="NONE",
    healthy_subjects=False,
    follow_up_years=2,  # kinetics, DCR, DOR, PFS, OS "up to 2 years"
)
