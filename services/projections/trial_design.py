"""The study facts that the SDTM trial design domains (TA, TE, TS) state and the ledger's
events do not (docs/exports.md, Trial design), taken from the study's definition file
(``studies/<study>/definition.json``: its title, sponsor, planned enrollment, dose levels,
phase and ``registration`` section; docs/studies.md). A fact the registration does not
give is ``None`` there and a null flavour in TS, never a guess. What the ledger does
know (the subjects enrolled, the first consent, the cut of an export) is derived from the
entries by ``services.projections.sdtm``, not written here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.study import StudyDefinition, study_definition


@dataclass(frozen=True, slots=True)
class TrialFacts:
    """What the protocol's registration says of the trial, in CDISC's words where CDISC
    has a codelist for it (SEXPOP, TBLIND, INTMODEL, STYPE, TTYPE, TINDTP)."""

    study_id: str
    title: str
    registry: str  # the registry that issued ``study_id``
    sponsor: str
    indication: str
    indication_snomed: str | None  # SNOMED CT concept of the indication
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


def trial_facts(definition: StudyDefinition) -> TrialFacts:
    """The facts of one study's definition, in the form TS and TA state them."""
    registration = definition.registration
    return TrialFacts(
        study_id=definition.study_id,
        title=definition.title,
        registry=registration.registry,
        sponsor=definition.sponsor,
        indication=registration.indication,
        indication_snomed=registration.indication_snomed,
        treatment=registration.treatment,
        country=registration.countries[0],
        planned_subjects=definition.planned_enrollment,
        dose_levels=definition.dose_levels,
        dose_per_level=tuple(float(definition.dose(n)) for n in definition.dose_levels),
        dose_unit=definition.dosing.unit,
        route=registration.route,
        sex_population=registration.sex_population,
        study_type=registration.study_type,
        intervention_model=registration.intervention_model,
        trial_types=tuple(registration.trial_types),
        intent=registration.intent,
        blinding=registration.blinding,
        randomised=registration.randomised,
        control=registration.control,
        healthy_subjects=registration.healthy_subjects,
        follow_up_years=registration.follow_up_years,
        phase=definition.phase,
        minimum_age=registration.minimum_age,
        maximum_age=registration.maximum_age,
        added_on=registration.added_on,
    )


TRIAL = trial_facts(study_definition())
