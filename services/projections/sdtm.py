"""A study's ledger as SDTM datasets (SDTMIG 3.4; docs/exports.md): the trial design (TA, TE,
TS), DM, DS, EX, AE, LB, PC, RS and QS, each row with the ledger positions it was derived
from (a trial design row: none, but TS's parameters the ledger knows).

Pure: ``sdtm_datasets`` takes ledger entries (position, event) in ledger order and returns
the datasets as rows of values; writing them as SAS transport files is the edge's
(``services.projections.xpt``). Times are the ledger's UTC times, written as ISO 8601
without an offset (SDTM --DTC); dates as given. A row's sources (``Dataset.sources``)
become its ``SUPP--`` qualifier ``LEDGPOS`` and the rows of the trace table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.projections.recorded import Recorded
from shared import clinical
from shared.contracts.adverse_events import (
    AdverseEventGradedV1,
    AdverseEventRegradedV1,
    AdverseEventReportedV1,
    AdverseEventResolvedV1,
    CausalityAssessedV1,
    DltAdjudicatedV1,
    SeriousnessAssessedV1,
)
from shared.contracts.assessments import (
    SLEDAI_2K_ITEMS,
    AutoantibodyMeasuredV1,
    CarTKineticsMeasuredV1,
    DiseaseActivityAssessedV1,
    RemissionAssessedV1,
)
from shared.contracts.enrollment import (
    ConsentSignedV1,
    EligibilityConfirmedV1,
    ScreenFailedV1,
    SubjectDiedV1,
    SubjectEnrolledV1,
    SubjectRegisteredV1,
    SubjectWithdrawnV1,
    ValueCorrectedV1,
)
from shared.contracts.infusion import (
    CarTInfusedV1,
    LymphodepletionAdministeredV1,
)
from shared.contracts.security import (
    AccessDeniedV1,
)
from shared.study import Criterion, Registration, StudyDefinition

SDTMIG_VERSION = "3.4"
SDTM_VERSION = "2.0"  # the SDTM model version SDTMIG 3.4 implements
Value = str | float | None
Row = dict[str, Value]


@dataclass(frozen=True, slots=True)
class SdtmStudy:
    """What the datasets take from a study's definition (docs/studies.md): STUDYID and
    USUBJID, the trial design (dose levels, criteria, the DLT window's days) and what TS
    states (title, sponsor, the registration's CDISC terms). Each ledger's own study: an
    export never names another study's identifiers or design."""

    definition: StudyDefinition
    days: clinical.Study
    criteria: dict[str, Criterion]

    @classmethod
    def of(cls, definition: StudyDefinition) -> SdtmStudy:
        criteria = {c.code: c for c in definition.eligibility.criteria}
        return cls(definition, clinical.Study.of(definition), criteria)

    @property
    def study_id(self) -> str:
        return self.definition.study_id

    @property
    def registration(self) -> Registration:
        return self.definition.registration

    @property
    def country(self) -> str:
        """The sites' country: each study so far has its sites in one (NCT05030779: China;
        docs/exports.md)."""
        return self.registration.countries[0]

    def usubjid(self, subject: str) -> str:
        return f"{self.study_id}-{subject}"

    def keys(self, domain: str, subject: str) -> Row:
        return {"STUDYID": self.study_id, "DOMAIN": domain, "USUBJID": self.usubjid(subject)}

    def levels(self) -> list[tuple[int, float]]:
        """Each dose level with its dose, in order: one arm each."""
        study = self.definition
        return [(level, float(study.dose(level))) for level in study.dose_levels]


@dataclass(frozen=True, slots=True)
class Variable:
    """One SDTM variable: name (8 characters at most), label (40 at most), type."""

    name: str
    label: str
    numeric: bool = False


@dataclass
class Dataset:
    """One domain's rows, each with the ledger positions it was derived from and the
    supplemental qualifiers (``SUPP--``) it has no variable for."""

    name: str
    label: str
    variables: tuple[Variable, ...]
    rows: list[Row] = field(default_factory=list)
    sources: list[tuple[int, ...]] = field(default_factory=list)
    qualifiers: list[dict[str, str]] = field(default_factory=list)

    def add(
        self, row: Row, positions: Iterable[int], qualifiers: dict[str, str] | None = None
    ) -> None:
        self.rows.append({v.name: row.get(v.name) for v in self.variables})
        self.sources.append(tuple(sorted(set(positions))))
        self.qualifiers.append(qualifiers or {})


def _vars(*specs: tuple[str, str] | tuple[str, str, bool]) -> tuple[Variable, ...]:
    return tuple(Variable(*spec) for spec in specs)


_KEYS = (("STUDYID", "Study Identifier"), ("DOMAIN", "Domain Abbreviation"),
         ("USUBJID", "Unique Subject Identifier"))  # fmt: skip
DM_VARIABLES = _vars(
    *_KEYS, ("SUBJID", "Subject Identifier for the Study"),
    ("RFSTDTC", "Subject Reference Start Date/Time"),
    ("RFENDTC", "Subject Reference End Date/Time"),
    ("RFXSTDTC", "Date/Time of First Study Treatment"),
    ("RFXENDTC", "Date/Time of Last Study Treatment"),
    ("RFICDTC", "Date/Time of Informed Consent"),
    ("DTHDTC", "Date/Time of Death"), ("DTHFL", "Subject Death Flag"),
    ("SITEID", "Study Site Identifier"), ("SEX", "Sex"),
    ("ARMCD", "Planned Arm Code"), ("ARM", "Description of Planned Arm"),
    ("ACTARMCD", "Actual Arm Code"), ("ACTARM", "Description of Actual Arm"),
    ("ARMNRS", "Reason Arm and/or Actual Arm is Null"), ("COUNTRY", "Country"),
)  # fmt: skip
DS_VARIABLES = _vars(
    *_KEYS, ("DSSEQ", "Sequence Number", True),
    ("DSTERM", "Reported Term for the Disposition Event"),
    ("DSDECOD", "Standardized Disposition Term"), ("DSCAT", "Category for Disposition Event"),
    ("DSSTDTC", "Start Date/Time of Disposition Event"),
)  # fmt: skip
EX_VARIABLES = _vars(
    *_KEYS, ("EXSEQ", "Sequence Number", True), ("EXTRT", "Name of Treatment"),
    ("EXCAT", "Category of Treatment"), ("EXDOSE", "Dose", True), ("EXDOSU", "Dose Units"),
    ("EXDOSFRM", "Dose Form"), ("EXROUTE", "Route of Administration"),
    ("EXSTDTC", "Start Date/Time of Treatment"), ("EXENDTC", "End Date/Time of Treatment"),
)  # fmt: skip
AE_VARIABLES = _vars(
    *_KEYS, ("AESEQ", "Sequence Number", True), ("AESPID", "Sponsor-Defined Identifier"),
    ("AETERM", "Reported Term for the Adverse Event"),
    ("AEDECOD", "Dictionary-Derived Term"), ("AEPTCD", "Preferred Term Code", True),
    ("AESER", "Serious Event"), ("AEREL", "Causality"), ("AEOUT", "Outcome of Adverse Event"),
    ("AESDTH", "Results in Death"), ("AESLIFE", "Is Life Threatening"),
    ("AESHOSP", "Requires or Prolongs Hospitalization"),
    ("AESDISAB", "Persist or Signif Disability/Incapacity"),
    ("AESCONG", "Congenital Anomaly or Birth Defect"),
    ("AESMIE", "Other Medically Important Serious Event"),
    ("AETOXGR", "Standard Toxicity Grade"),
    ("AESTDTC", "Start Date/Time of Adverse Event"), ("AEENDTC", "End Date/Time of Adverse Event"),
    ("AESTDY", "Study Day of Start of Adverse Event", True),
)  # fmt: skip
_FINDINGS_RESULTS = (
    ("ORRES", "Result or Finding in Original Units"), ("ORRESU", "Original Units"),
    ("STRESC", "Character Result/Finding in Std Format"),
    ("STRESN", "Numeric Result/Finding in Standard Units", True),
    ("STRESU", "Standard Units"),
)  # fmt: skip
LB_VARIABLES = _vars(
    *_KEYS, ("LBSEQ", "Sequence Number", True), ("LBTESTCD", "Lab Test or Examination Short Name."),
    ("LBTEST", "Lab Test or Examination Name"), ("LBCAT", "Category for Lab Test"),
    *((f"LB{n}", *rest) for n, *rest in _FINDINGS_RESULTS),
    ("LBORNRLO", "Reference Range Lower Limit in Orig Unit"),
    ("LBORNRHI", "Reference Range Upper Limit in Orig Unit"),
    ("LBNRIND", "Reference Range Indicator"), ("LBDTC", "Date/Time of Specimen Collection"),
    ("LBDY", "Study Day of Specimen Collection", True),
)  # fmt: skip
PC_VARIABLES = _vars(
    *_KEYS, ("PCSEQ", "Sequence Number", True), ("PCTESTCD", "Pharmacokinetic Test Short Name"),
    ("PCTEST", "Pharmacokinetic Test Name"), ("PCSPEC", "Specimen Material Type"),
    ("PCMETHOD", "Method of Test or Examination"),
    *((f"PC{n}", *rest) for n, *rest in _FINDINGS_RESULTS),
    ("PCLLOQ", "Lower Limit of Quantitation", True), ("PCDTC", "Date/Time of Specimen Collection"),
    ("PCDY", "Study Day of Specimen Collection", True),
)  # fmt: skip
QS_VARIABLES = _vars(
    *_KEYS, ("QSSEQ", "Sequence Number", True), ("QSTESTCD", "Question Short Name"),
    ("QSTEST", "Question Name"), ("QSCAT", "Category of Question"),
    ("QSORRES", "Finding in Original Units"),
    ("QSSTRESC", "Character Result/Finding in Std Format"),
    ("QSSTRESN", "Numeric Finding in Standard Units", True),
    ("QSEVLINT", "Evaluation Interval"), ("QSDTC", "Date/Time of Finding"),
    ("QSDY", "Study Day of Finding", True),
)  # fmt: skip
RS_VARIABLES = _vars(
    *_KEYS, ("RSSEQ", "Sequence Number", True), ("RSTESTCD", "Assessment Short Name"),
    ("RSTEST", "Assessment Name"), ("RSCAT", "Category for Assessment"),
    ("RSORRES", "Result or Finding in Original Units"),
    ("RSSTRESC", "Character Result/Finding in Std Format"), ("RSEVAL", "Evaluator"),
    ("RSDTC", "Date/Time of Assessment"), ("RSDY", "Study Day of Assessment", True),
)  # fmt: skip
IE_VARIABLES = _vars(
    *_KEYS, ("IESEQ", "Sequence Number", True),
    ("IETESTCD", "Inclusion/Exclusion Criterion Short Name"),
    ("IETEST", "Inclusion/Exclusion Criterion"), ("IECAT", "Inclusion/Exclusion Category"),
    ("IEORRES", "I/E Criterion Original Result"),
    ("IESTRESC", "I/E Criterion Result in Std Format"), ("IEDTC", "Date/Time of Collection"),
)  # fmt: skip
TI_VARIABLES = _vars(
    ("STUDYID", "Study Identifier"), ("DOMAIN", "Domain Abbreviation"),
    ("IETESTCD", "Inclusion/Exclusion Criterion Short Name"),
    ("IETEST", "Inclusion/Exclusion Criterion"), ("IECAT", "Inclusion/Exclusion Category"),
    ("TIRL", "Inclusion/Exclusion Criterion Rule"), ("TIVERS", "Protocol Criteria Versions"),
)  # fmt: skip
TA_VARIABLES = _vars(
    ("STUDYID", "Study Identifier"), ("DOMAIN", "Domain Abbreviation"),
    ("ARMCD", "Planned Arm Code"), ("ARM", "Description of Planned Arm"),
    ("TAETORD", "Planned Order of Element within Arm", True), ("ETCD", "Element Code"),
    ("ELEMENT", "Description of Element"), ("TABRANCH", "Branch"),
    ("TATRANS", "Transition Rule"), ("EPOCH", "Epoch"),
)  # fmt: skip
TE_VARIABLES = _vars(
    ("STUDYID", "Study Identifier"), ("DOMAIN", "Domain Abbreviation"),
    ("ETCD", "Element Code"), ("ELEMENT", "Description of Element"),
    ("TESTRL", "Rule for Start of Element"), ("TEENRL", "Rule for End of Element"),
)  # fmt: skip
TS_VARIABLES = _vars(
    ("STUDYID", "Study Identifier"), ("DOMAIN", "Domain Abbreviation"),
    ("TSSEQ", "Sequence Number", True), ("TSGRPID", "Group ID"),
    ("TSPARMCD", "Trial Summary Parameter Short Name"), ("TSPARM", "Trial Summary Parameter"),
    ("TSVAL", "Parameter Value"), ("TSVALNF", "Parameter Value Null Flavor"),
    ("TSVALCD", "Parameter Value Code"), ("TSVCDREF", "Name of the Reference Terminology"),
    ("TSVCDVER", "Version of the Reference Terminology"),
)  # fmt: skip
SUPP_VARIABLES = _vars(
    ("STUDYID", "Study Identifier"), ("RDOMAIN", "Related Domain Abbreviation"),
    ("USUBJID", "Unique Subject Identifier"), ("IDVAR", "Identifying Variable"),
    ("IDVARVAL", "Identifying Variable Value"), ("QNAM", "Qualifier Variable Name"),
    ("QLABEL", "Qualifier Variable Label"), ("QVAL", "Data Value"),
    ("QORIG", "Origin"), ("QEVAL", "Evaluator"),
)  # fmt: skip
# Supplemental qualifiers of AE: what the ledger records that AE has no variable for.
AE_QUALIFIERS = {
    "AEGRSCL": "Grading Scale of AETOXGR",
    "AETRTEM": "Treatment Emergent Flag",
    "AEDLTFL": "Dose-Limiting Toxicity Flag",
    "AEDLTCR": "Dose-Limiting Toxicity Criterion",
    "AERELLD": "Causality to Lymphodepletion",
}
LEDGER_QUALIFIER = ("LEDGPOS", "Ledger Positions of the Record")
# ValueCorrected.v1's field -> the DM variable it corrects (a consent's signing day).
DM_CORRECTIONS = {"consent.signed_on": "RFICDTC"}
# The ledger's outcome words -> CDISC CT OUT (C66768); any other is kept, upper case.
OUTCOMES = {"recovered": "RECOVERED/RESOLVED", "resolved": "RECOVERED/RESOLVED",
            "fatal": "FATAL", "not_recovered": "NOT RECOVERED/NOT RESOLVED",
            "recovering": "RECOVERING/RESOLVING",
            "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE"}  # fmt: skip


# The trial design datasets: no subjects, no SUPP-- (docs/exports.md, Trial design).
TRIAL_DESIGN = ("TA", "TE", "TI", "TS")


def sdtm_datasets(
    entries: Sequence[tuple[int, Recorded]], definition: StudyDefinition
) -> dict[str, Dataset]:
    """TA, TE, TI and TS; DM, DS, IE, EX, AE, LB, PC, RS and QS of the entries, and the
    SUPP-- of each of those, for the study of ``definition`` (the ledger's)."""
    study = SdtmStudy.of(definition)
    subject_entries = [
        (p, e) for p, e in entries if e.subject and e.type != AccessDeniedV1.event_type
    ]
    datasets = {
        "DM": demographics(study, subject_entries),
        "DS": disposition(study, subject_entries),
        "IE": inclusion_exclusion(study, subject_entries),
        "EX": exposure(study, subject_entries),
        "AE": adverse_events(study, subject_entries),
        "LB": laboratory(study, subject_entries),
        "PC": kinetics(study, subject_entries),
        "RS": responses(study, subject_entries),
        "QS": questionnaires(study, subject_entries),
    }
    supplements = {f"SUPP{name}": supplemental(d) for name, d in datasets.items()}
    design = {"TA": trial_arms(study), "TE": trial_elements(study),
              "TI": trial_inclusion_exclusion(study),
              "TS": trial_summary(study, entries, datasets["DM"])}  # fmt: skip
    return design | datasets | supplements


def dtc(value: Any) -> str:
    """SDTM's ISO 8601 date or date/time: a date as given, a time in UTC to the second."""
    text = str(value)
    if len(text) == 10:
        return text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _by_subject(entries: Iterable[tuple[int, Recorded]]) -> dict[str, list[tuple[int, Recorded]]]:
    grouped: dict[str, list[tuple[int, Recorded]]] = {}
    for position, event in entries:
        grouped.setdefault(str(event.subject), []).append((position, event))
    return grouped


# --- DM ----------------------------------------------------------------------------------


def demographics(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    dataset = Dataset("DM", "Demographics", DM_VARIABLES)
    for subject, events in sorted(_by_subject(entries).items()):
        row, positions = _subject_row(study, subject, events)
        if "SITEID" in row:  # a subject is one once registered
            dataset.add(row, positions)
    return dataset


def _subject_row(
    study: SdtmStudy, subject: str, events: list[tuple[int, Recorded]]
) -> tuple[Row, list[int]]:
    row: Row = {**study.keys("DM", subject), "SUBJID": subject, "SEX": "U",
                "COUNTRY": study.country}  # fmt: skip
    positions: list[int] = []
    for position, event in events:
        change = DM_CHANGES.get(event.type)
        if change is not None and change(row, event.data, event):
            positions.append(position)
    _arms(row)
    return row, positions


def _dm_registered(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    row["SITEID"] = str(data["site_id"])
    return True


def _dm_consent(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    row["RFICDTC"] = dtc(data["signed_on"])
    return True


def _dm_corrected(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    variable = DM_CORRECTIONS.get(str(data["field"]))
    if variable is None:
        return False
    row[variable] = dtc(data["new_value"])
    return True


def _dm_screen_failed(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    row["ARMNRS"] = "SCREEN FAILURE"
    return True


def _dm_enrolled(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    row["ARMCD"], row["ARM"] = planned_arm(int(data["dose_level"]))
    return True


def _dm_infused(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    row["ACTARMCD"], row["ACTARM"] = planned_arm(int(data["dose_level"]))
    row["RFSTDTC"] = row["RFXSTDTC"] = dtc(data["started_at"])
    row["RFXENDTC"] = dtc(data["ended_at"])
    row["RFENDTC"] = row.get("RFENDTC") or row["RFXENDTC"]
    return True


def _dm_ended(row: Row, data: dict[str, Any], event: Recorded) -> bool:
    row["RFENDTC"] = dtc(event.time)
    if event.type == SubjectDiedV1.event_type:
        row["DTHDTC"], row["DTHFL"] = dtc(event.time), "Y"
    return True


DM_CHANGES: dict[str, Callable[[Row, dict[str, Any], Recorded], bool]] = {
    SubjectRegisteredV1.event_type: _dm_registered,
    ConsentSignedV1.event_type: _dm_consent,
    ValueCorrectedV1.event_type: _dm_corrected,
    ScreenFailedV1.event_type: _dm_screen_failed,
    SubjectEnrolledV1.event_type: _dm_enrolled,
    CarTInfusedV1.event_type: _dm_infused,
    SubjectWithdrawnV1.event_type: _dm_ended,
    SubjectDiedV1.event_type: _dm_ended,
}


def planned_arm(dose_level: int) -> tuple[str, str]:
    """ARMCD and ARM of a dose level: DM's arms (planned and actual) and TA's."""
    return f"DL{dose_level}", f"CAR-T dose level {dose_level}"


def _arms(row: Row) -> None:
    """SDTMIG 3.4: a null ARMCD or ACTARMCD says why in ARMNRS."""
    if row.get("ARMNRS"):
        return
    if row.get("ARMCD") is None:
        row["ARMNRS"] = "NOT ASSIGNED"
    elif row.get("ACTARMCD") is None:
        row["ARMNRS"] = "ASSIGNED, NOT TREATED"


# --- DS ----------------------------------------------------------------------------------

MILESTONE, DISPOSITION = "PROTOCOL MILESTONE", "DISPOSITION EVENT"
# Event type -> (DSDECOD, DSCAT, the data field of its date; None: the event's clinical time)
DS_EVENTS: dict[str, tuple[str, str, str | None]] = {
    ConsentSignedV1.event_type: ("INFORMED CONSENT OBTAINED", MILESTONE, "signed_on"),
    EligibilityConfirmedV1.event_type: ("ELIGIBILITY CRITERIA MET", MILESTONE, None),
    ScreenFailedV1.event_type: ("SCREEN FAILURE", DISPOSITION, None),
    SubjectEnrolledV1.event_type: ("ENROLLED", MILESTONE, None),
    SubjectWithdrawnV1.event_type: ("WITHDRAWAL BY SUBJECT", DISPOSITION, None),
    SubjectDiedV1.event_type: ("DEATH", DISPOSITION, None),
}


def disposition(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    dataset = Dataset("DS", "Disposition", DS_VARIABLES)
    for subject, events in sorted(_by_subject(entries).items()):
        sequence = 0
        for position, event in events:
            mapped = DS_EVENTS.get(event.type)
            if mapped is None:
                continue
            decod, category, day = mapped
            sequence += 1
            term, start = _ds_term(event, decod), dtc(event.data[day] if day else event.time)
            row: Row = {"DSSEQ": float(sequence), "DSTERM": term, "DSDECOD": decod,
                        "DSCAT": category, "DSSTDTC": start}  # fmt: skip
            dataset.add({**study.keys("DS", subject), **row}, [position])
    return dataset


def _ds_term(event: Recorded, decod: str) -> str:
    """The reported term: the reason or cause as recorded, else the standard term."""
    data = event.data
    if event.type == SubjectDiedV1.event_type:
        return str(data["cause"])
    if event.type == ScreenFailedV1.event_type:
        return "SCREEN FAILURE: " + ", ".join(data["failed_criteria"])
    if event.type == SubjectWithdrawnV1.event_type and data.get("reason"):
        return str(data["reason"])
    return decod


# --- EX ----------------------------------------------------------------------------------


def exposure(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    dataset = Dataset("EX", "Exposure", EX_VARIABLES)
    for subject, events in sorted(_by_subject(entries).items()):
        rows = [(row, p) for p, e in events for row in _ex_rows(study, e)]
        rows.sort(key=lambda r: (str(r[0]["EXSTDTC"]), r[1]))
        for sequence, (row, position) in enumerate(rows, start=1):
            row = {**study.keys("EX", subject), **row, "EXSEQ": float(sequence)}
            dataset.add(row, [position])
    return dataset


def _ex_rows(study: SdtmStudy, event: Recorded) -> list[Row]:
    data = event.data
    if event.type == CarTInfusedV1.event_type:
        return [{"EXTRT": study.registration.treatment, "EXCAT": "CAR-T INFUSION",
                 "EXDOSE": float(Decimal(str(data["cells_per_kg_millions"]))),
                 "EXDOSU": study.definition.dosing.unit, "EXDOSFRM": "SUSPENSION",
                 "EXROUTE": "INTRAVENOUS",
                 "EXSTDTC": dtc(data["started_at"]), "EXENDTC": dtc(data["ended_at"])}]  # fmt: skip
    if event.type == LymphodepletionAdministeredV1.event_type:
        return [{"EXTRT": str(agent["agent"]).upper(), "EXCAT": "LYMPHODEPLETION",
                 "EXDOSE": float(Decimal(str(agent["dose_mg_per_m2"]))), "EXDOSU": "mg/m2",
                 "EXROUTE": "INTRAVENOUS", "EXSTDTC": dtc(data["started_on"]),
                 "EXENDTC": dtc(data["completed_on"])} for agent in data["agents"]]  # fmt: skip
    return []


# --- AE ----------------------------------------------------------------------------------


@dataclass
class AdverseEvent:
    """One adverse-event record folded over its events: its AE row, qualifiers, sources."""

    subject: str
    row: Row
    qualifiers: dict[str, str] = field(default_factory=dict)
    positions: list[int] = field(default_factory=list)


def adverse_events(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    """One row per adverse-event record, as its latest events leave it; the qualifiers
    without an AE variable are kept on the row for ``supplemental``."""
    records: dict[str, AdverseEvent] = {}
    for position, event in entries:
        change = AE_CHANGES.get(event.type)
        if change is None:
            continue
        key = str(event.data["record_id"])
        if key not in records and event.type != AdverseEventReportedV1.event_type:
            continue  # a record whose report is not in the entries read
        record = records.setdefault(key, AdverseEvent(str(event.subject), {"AESPID": key}))
        change(record, event.data)
        record.positions.append(position)
    dataset = Dataset("AE", "Adverse Events", AE_VARIABLES)
    for subject, group in sorted(_group(records.values()).items()):
        group.sort(key=lambda r: (str(r.row["AESTDTC"]), r.positions[0]))
        for sequence, record in enumerate(group, start=1):
            row = {**study.keys("AE", subject), **record.row, "AESEQ": float(sequence)}
            dataset.add(row, record.positions, record.qualifiers)
    return dataset


def _group(records: Iterable[AdverseEvent]) -> dict[str, list[AdverseEvent]]:
    grouped: dict[str, list[AdverseEvent]] = {}
    for record in records:
        grouped.setdefault(record.subject, []).append(record)
    return grouped


def _yn(value: Any) -> str:
    return "Y" if value else "N"


def _ae_reported(record: AdverseEvent, data: dict[str, Any]) -> None:
    code = data.get("meddra_code")
    record.row.update(AETERM=str(data["verbatim"]), AEDECOD=str(data["term"]).upper(),
                      AEPTCD=float(code) if code and str(code).isdigit() else None,
                      AESTDTC=dtc(data["onset_at"]), AESTDY=float(data["study_day"]))  # fmt: skip
    record.qualifiers["AETRTEM"] = _yn(data["treatment_emergent"])


def _ae_graded(record: AdverseEvent, data: dict[str, Any]) -> None:
    record.row["AETOXGR"] = str(data["grade"])
    record.qualifiers["AEGRSCL"] = str(data["scale"])


def _ae_seriousness(record: AdverseEvent, data: dict[str, Any]) -> None:
    record.row.update(
        AESER=_yn(data["serious"]), AESDTH=_yn(data["death"]),
        AESLIFE=_yn(data["life_threatening"]), AESHOSP=_yn(data["hospitalisation"]),
        AESDISAB=_yn(data["disability"]), AESCONG=_yn(data["congenital_anomaly"]),
        AESMIE=_yn(data["medically_important"]),
    )  # fmt: skip


def _ae_causality(record: AdverseEvent, data: dict[str, Any]) -> None:
    record.row["AEREL"] = str(data["car_t"]).upper()
    record.qualifiers["AERELLD"] = str(data["lymphodepletion"]).upper()


def _ae_dlt(record: AdverseEvent, data: dict[str, Any]) -> None:
    record.qualifiers["AEDLTFL"] = _yn(data["is_dlt"])
    if data.get("criterion"):
        record.qualifiers["AEDLTCR"] = str(data["criterion"])


def _ae_resolved(record: AdverseEvent, data: dict[str, Any]) -> None:
    outcome = str(data["outcome"])
    record.row["AEENDTC"] = dtc(data["ended_on"])
    record.row["AEOUT"] = OUTCOMES.get(outcome.lower(), outcome.upper())


AE_CHANGES: dict[str, Callable[[AdverseEvent, dict[str, Any]], None]] = {
    AdverseEventReportedV1.event_type: _ae_reported,
    AdverseEventGradedV1.event_type: _ae_graded,
    AdverseEventRegradedV1.event_type: _ae_graded,
    SeriousnessAssessedV1.event_type: _ae_seriousness,
    CausalityAssessedV1.event_type: _ae_causality,
    DltAdjudicatedV1.event_type: _ae_dlt,
    AdverseEventResolvedV1.event_type: _ae_resolved,
}


# --- LB, PC, RS: one row per result, in ledger order ------------------------------------

# The ledger's analytes -> LBTESTCD, LBTEST (CDISC CT LBTESTCD/LBTEST, C65047/C67154).
ANALYTES = {"anti_dsdna": ("DSDNAAB", "Double-Stranded DNA Antibody"),
            "ana": ("ANA", "Antinuclear Antibodies"),
            "c3": ("C3", "Complement C3"), "c4": ("C4", "Complement C4")}  # fmt: skip
SPECIMENS = {"peripheral_blood": "BLOOD", "bone_marrow": "BONE MARROW"}
METHODS = {"qpcr": "QUANTITATIVE POLYMERASE CHAIN REACTION", "flow_cytometry": "FLOW CYTOMETRY"}
# RemissionAssessed.v1's criteria -> RSTESTCD, RSTEST (sponsor-defined: no CDISC codes)
RESPONSE_TESTS = (("response", "OVRLRESP", "Overall Response"),
                  ("doris", "DORIS", "DORIS Remission"), ("lldas", "LLDAS", "LLDAS Attained"),
                  ("sri4", "SRI4", "SRI-4 Response"))  # fmt: skip


def _findings(
    study: SdtmStudy, name: str, label: str, variables: tuple[Variable, ...], event_type: str,
    rows_of: Callable[[Recorded], list[Row]], entries: Sequence[tuple[int, Recorded]],
) -> Dataset:  # fmt: skip
    dataset = Dataset(name, label, variables)
    for subject, events in sorted(_by_subject(entries).items()):
        rows = [(row, p) for p, e in events if e.type == event_type for row in rows_of(e)]
        for sequence, (row, position) in enumerate(rows, start=1):
            keys = {**study.keys(name, subject), f"{name}SEQ": float(sequence)}
            dataset.add({**keys, **row}, [position])
    return dataset


def laboratory(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    return _findings(study, "LB", "Laboratory Test Results", LB_VARIABLES,
                     AutoantibodyMeasuredV1.event_type, _lb_rows, entries)  # fmt: skip


def _lb_rows(event: Recorded) -> list[Row]:
    return [_lb_row(event, result) for result in event.data["results"]]


def _lb_row(event: Recorded, result: dict[str, Any]) -> Row:
    code, test = ANALYTES.get(result["analyte"], (str(result["analyte"]).upper()[:8], ""))
    standard = Decimal(str(result["canonical_value"]))
    return {"LBTESTCD": code, "LBTEST": test or str(result["analyte"]), "LBCAT": "SLE SEROLOGY",
            "LBORRES": str(result["value"]), "LBORRESU": str(result["unit"]),
            "LBSTRESC": str(standard), "LBSTRESN": float(standard),
            "LBSTRESU": str(result["canonical_unit"]),
            "LBORNRLO": _text(result.get("reference_low")),
            "LBORNRHI": _text(result.get("reference_high")),
            "LBNRIND": str(result["flag"]).upper(), "LBDTC": dtc(event.time),
            "LBDY": float(event.data["study_day"])}  # fmt: skip


def kinetics(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    return _findings(study, "PC", "Pharmacokinetics Concentrations", PC_VARIABLES,
                     CarTKineticsMeasuredV1.event_type, _pc_rows, entries)  # fmt: skip


def _pc_rows(event: Recorded) -> list[Row]:
    data = event.data
    target = str(data["target"]).upper()
    below = bool(data["below_lloq"])
    value = Decimal(str(data["value"]))
    return [{"PCTESTCD": f"CAR{target}"[:8], "PCTEST": f"CAR-T {target} Transgene/Cells",
             "PCSPEC": SPECIMENS.get(data["sample"], str(data["sample"]).upper()),
             "PCMETHOD": METHODS.get(data["method"], str(data["method"]).upper()),
             "PCORRES": str(value), "PCORRESU": str(data["unit"]),
             "PCSTRESC": "BLQ" if below else str(value),
             "PCSTRESN": None if below else float(value), "PCSTRESU": str(data["unit"]),
             "PCLLOQ": float(Decimal(str(data["lloq"]))), "PCDTC": dtc(event.time),
             "PCDY": float(data["study_day"])}]  # fmt: skip


def responses(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    return _findings(study, "RS", "Disease Response", RS_VARIABLES, RemissionAssessedV1.event_type,
                     _rs_rows, entries)  # fmt: skip


def _rs_rows(event: Recorded) -> list[Row]:
    rows: list[Row] = []
    for field_name, code, test in RESPONSE_TESTS:
        value = event.data.get(field_name)
        if value is None:
            continue  # SRI-4 of a visit without BILAG scoring
        result = _yn(value) if isinstance(value, bool) else str(value).upper()
        rows.append({"RSTESTCD": code, "RSTEST": test, "RSCAT": "SLE RESPONSE",
                     "RSORRES": result, "RSSTRESC": result, "RSEVAL": "INVESTIGATOR",
                     "RSDTC": dtc(event.time), "RSDY": float(event.data["study_day"])})  # fmt: skip
    return rows


SLEDAI = "SLEDAI-2K"
# DiseaseActivityAssessed.v1's scores -> QSTESTCD, QSTEST, QSCAT
SLEDAI_SCORES = (("sledai_2k", "SLEDTOT", "SLEDAI-2K Total Score", SLEDAI),
                 ("clinical_sledai", "SLEDCLIN", "Clinical SLEDAI-2K Score", SLEDAI),
                 ("pga", "PGA", "Physician Global Assessment (0-3)",
                  "PHYSICIAN GLOBAL ASSESSMENT"))  # fmt: skip


def questionnaires(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    """SLEDAI-2K at each visit: each descriptor (Y/N), the total and clinical scores, and
    the physician's global assessment; the look-back is SLEDAI-2K's 30 days."""
    return _findings(study, "QS", "Questionnaires", QS_VARIABLES,
                     DiseaseActivityAssessedV1.event_type, _qs_rows, entries)  # fmt: skip


def _qs_rows(event: Recorded) -> list[Row]:
    data = event.data
    visit: Row = {"QSEVLINT": "-P30D", "QSDTC": dtc(event.time), "QSDY": float(data["study_day"])}
    rows: list[Row] = []
    # the descriptors in the instrument's order: QSTESTCD SLED01..SLED24 (sponsor codes:
    # CDISC publishes no QS supplement for SLEDAI-2K; docs/exports.md)
    for number, item in enumerate(SLEDAI_2K_ITEMS, start=1):
        if item in data["items"]:
            answer = _yn(data["items"][item])
            rows.append({"QSTESTCD": f"SLED{number:02d}", "QSCAT": SLEDAI,
                         "QSTEST": item.replace("_", " ").capitalize(), "QSORRES": answer,
                         "QSSTRESC": answer, **visit})  # fmt: skip
    for name, code, test, category in SLEDAI_SCORES:
        score = Decimal(str(data[name]))
        rows.append({"QSTESTCD": code, "QSTEST": test, "QSCAT": category,
                     "QSORRES": str(score), "QSSTRESC": str(score),
                     "QSSTRESN": float(score), **visit})  # fmt: skip
    return rows


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# --- IE and TI: the eligibility criteria -------------------------------------------------

# A criterion a decision names that the study's definition does not (never so far).
UNMAPPED = "UNMAPPED"


def _category(criterion: Criterion) -> str:
    return "INCLUSION" if criterion.inclusion else "EXCLUSION"


def inclusion_exclusion(study: SdtmStudy, entries: Sequence[tuple[int, Recorded]]) -> Dataset:
    """One row per criterion a screen failure did not meet (SDTMIG 3.4: IE holds only the
    criteria not met): an inclusion not met (IEORRES N) or an exclusion that applies (Y),
    dated as DS dates the screen failure. Each decision the ledger holds gives its rows, a
    subject screened again keeps the earlier failure's. A subject found eligible has no
    row: every criterion was met (EligibilityConfirmed)."""
    dataset = Dataset("IE", "Inclusion/Exclusion Criteria Not Met", IE_VARIABLES)
    for subject, events in sorted(_by_subject(entries).items()):
        sequence = 0
        for position, event in events:
            if event.type != ScreenFailedV1.event_type:
                continue
            for code in event.data["failed_criteria"]:
                sequence += 1
                row = _ie_row(study, subject, sequence, str(code), event)
                dataset.add(row, [position])
    return dataset


def _ie_row(study: SdtmStudy, subject: str, sequence: int, code: str, event: Recorded) -> Row:
    row: Row = {**study.keys("IE", subject), "IESEQ": float(sequence), "IETESTCD": UNMAPPED,
                "IETEST": code, "IEDTC": dtc(event.time)}  # fmt: skip
    criterion = study.criteria.get(code)
    if criterion is not None:
        result = "N" if criterion.inclusion else "Y"
        row |= {"IETESTCD": criterion.test_code, "IETEST": criterion.text,
                "IECAT": _category(criterion), "IEORRES": result, "IESTRESC": result}  # fmt: skip
    return row


def criterion_rule(criterion: Criterion) -> str:
    """The criterion as its evaluation reads it (TIRL): met when ``<code> <requirement>``,
    the requirement as each decision stores it, e.g. ``platelets >= 30 10^9/L``."""
    return f"{criterion.code} {criterion.describe()}"


def trial_inclusion_exclusion(study: SdtmStudy) -> Dataset:
    """Every criterion of the study's definition, in its order, with its rule and the
    definition's version (TIVERS)."""
    dataset = Dataset("TI", "Trial Inclusion/Exclusion Criteria", TI_VARIABLES)
    for criterion in study.definition.eligibility.criteria:
        dataset.add({"STUDYID": study.study_id, "DOMAIN": "TI", "IETESTCD": criterion.test_code,
                     "IETEST": criterion.text, "IECAT": _category(criterion),
                     "TIRL": criterion_rule(criterion),
                     "TIVERS": str(study.definition.definition_version)}, [])  # fmt: skip
    return dataset


# --- TA, TE, TS: the trial design --------------------------------------------------------

# Elements (TE) and the epoch each is in (TA), in every arm's order. The rules are words,
# as SDTMIG 7.2.2 asks, naming neither arm nor epoch; the windows are the study
# definition's (shared.clinical: the DLT window's last day, the infusion's day number).
Element = tuple[str, str, str, str, str]  # ETCD, ELEMENT, TESTRL, TEENRL, EPOCH
SCREENING = ("SCRN", "Screening", "Informed consent signed",
             "Enrollment at a dose level, or screen failure", "SCREENING")  # fmt: skip
LYMPHODEPLETION = ("LD", "Lymphodepletion", "First dose of lymphodepleting chemotherapy",
                   "Start of the CAR-T cell infusion", "TREATMENT")  # fmt: skip


def _dlt_window_end(study: SdtmStudy) -> str:
    """The one instant that ends the infusion's element and starts follow-up (no gap:
    7.2.2), in the study's own window and day numbering."""
    days = study.days
    return (f"End of the DLT window: the end of study day {days.dlt_last_day} after the "
            f"infusion (the infusion's date is day {days.infusion_day})")  # fmt: skip


def _follow_up(study: SdtmStudy) -> Element:
    years = study.registration.follow_up_years
    return ("FU", "Follow-up", _dlt_window_end(study),
            f"{years} years after the infusion, or death or withdrawal", "FOLLOW-UP")  # fmt: skip


def _car_t_element(study: SdtmStudy, level: int, dose: float) -> Element:
    amount = f"{dose:g} x10^6 CAR-T cells/kg"
    return (f"CART{level}", f"CAR-T cells {amount}",
            f"Start of the CAR-T cell infusion, where the dose is {amount}",
            _dlt_window_end(study), "TREATMENT")  # fmt: skip


def _arm_elements(study: SdtmStudy, level: int, dose: float) -> list[Element]:
    return [SCREENING, LYMPHODEPLETION, _car_t_element(study, level, dose), _follow_up(study)]


def trial_arms(study: SdtmStudy) -> Dataset:
    """One arm per dose level (DM's ARMCD: ``planned_arm``): screening, lymphodepletion, the
    infusion at the level and its DLT window, follow-up. The branch is the enrollment at a
    level, the cohort the 3+3 escalation has open."""
    dataset = Dataset("TA", "Trial Arms", TA_VARIABLES)
    for level, dose in study.levels():
        code, arm = planned_arm(level)
        elements = _arm_elements(study, level, dose)
        for order, (etcd, element, _, _, epoch) in enumerate(elements, 1):
            branch = f"Enrolled at dose level {level}" if etcd == SCREENING[0] else None
            dataset.add({"STUDYID": study.study_id, "DOMAIN": "TA", "ARMCD": code, "ARM": arm,
                         "TAETORD": float(order), "ETCD": etcd, "ELEMENT": element,
                         "TABRANCH": branch, "EPOCH": epoch}, [])  # fmt: skip
    return dataset


def trial_elements(study: SdtmStudy) -> Dataset:
    """Each element of TA once, with its start and end rules."""
    dataset = Dataset("TE", "Trial Elements", TE_VARIABLES)
    cells = [_car_t_element(study, level, dose) for level, dose in study.levels()]
    for etcd, element, start, end, _ in (SCREENING, LYMPHODEPLETION, *cells, _follow_up(study)):
        dataset.add({"STUDYID": study.study_id, "DOMAIN": "TE", "ETCD": etcd, "ELEMENT": element,
                     "TESTRL": start, "TEENRL": end}, [])  # fmt: skip
    return dataset


# TSPARMCD -> TSPARM (CDISC CT TSPARMCD/TSPARM, C66738/C67152)
TS_PARAMETERS = {
    "TITLE": "Trial Title", "REGID": "Registry Identifier", "SPONSOR": "Clinical Study Sponsor",
    "STYPE": "Study Type", "TTYPE": "Trial Type", "TPHASE": "Trial Phase Classification",
    "INTMODEL": "Intervention Model", "TBLIND": "Trial Blinding Schema",
    "RANDOM": "Trial is Randomized", "TCNTRL": "Control Type",
    "ADDON": "Added on to Existing Treatments", "HLTSUBJI": "Healthy Subject Indicator",
    "INDIC": "Trial Disease/Condition Indication", "TINDTP": "Trial Intent Type",
    "TRT": "Investigational Therapy or Treatment", "PCLAS": "Pharmacological Class",
    "DOSE": "Dose per Administration", "DOSU": "Dose Units", "DOSFRQ": "Dosing Frequency",
    "ROUTE": "Route of Administration", "AGEMIN": "Planned Minimum Age of Subjects",
    "AGEMAX": "Planned Maximum Age of Subjects", "SEXPOP": "Sex of Participants",
    "PLANSUB": "Planned Number of Subjects", "NARMS": "Planned Number of Arms",
    "FCNTRY": "Planned Country of Investigational Sites", "SDTIGVER": "SDTM IG Version",
    "SDTMVER": "SDTM Version", "ACTSUB": "Actual Number of Subjects",
    "SSTDTC": "Study Start Date", "SENDTC": "Study End Date", "DCUTDTC": "Data Cutoff Date",
    "DCUTDESC": "Data Cutoff Description",
}  # fmt: skip
# The CDISC CT terms TS uses -> their NCI codes (TSVALCD; TSVCDREF "CDISC CT").
CT_CODES = {
    "Y": "C49488", "N": "C49487", "INTERVENTIONAL": "C98388", "SAFETY": "C49667",
    "EFFICACY": "C49666", "SINGLE GROUP": "C82640", "OPEN LABEL": "C49659", "NONE": "C41132",
    "TREATMENT": "C49656", "ONCE": "C64576", "INTRAVENOUS": "C38276", "BOTH": "C49636",
    "PHASE 0 TRIAL": "C54721", "PHASE I TRIAL": "C15600", "PHASE I/II TRIAL": "C15693",
    "PHASE II TRIAL": "C15601", "PHASE II/III TRIAL": "C15694", "PHASE III TRIAL": "C15602",
    "PHASE IV TRIAL": "C15603",
}  # fmt: skip
# A definition's phase as registered (ClinicalTrials.gov: "PHASE1", "EARLY_PHASE1",
# "PHASE1/PHASE2"; or "1", "1/2"), without "PHASE", "_" and spaces -> TPHASE's CDISC CT term
TRIAL_PHASES = {"0": "PHASE 0 TRIAL", "EARLY1": "PHASE 0 TRIAL", "1": "PHASE I TRIAL",
                "1/2": "PHASE I/II TRIAL", "2": "PHASE II TRIAL", "2/3": "PHASE II/III TRIAL",
                "3": "PHASE III TRIAL", "4": "PHASE IV TRIAL"}  # fmt: skip
CDISC_CT, ISO_8601_REF = "CDISC CT", "ISO 8601"
# ISO 21090 null flavours: unknown (the registration does not say); not yet available
# (the trial has not ended, or nothing is in the ledger yet).
UNKNOWN, NOT_YET = "UNK", "NAV"


@dataclass
class _Summary:
    study_id: str
    dataset: Dataset = field(default_factory=lambda: Dataset("TS", "Trial Summary",
                                                             TS_VARIABLES))  # fmt: skip

    def add(self, code: str, value: str | None, *, ref: str | None = None,
            value_code: str | None = None, group: str | None = None,
            positions: Iterable[int] = (), null: str = UNKNOWN) -> None:  # fmt: skip
        """A parameter's value, or its null flavour (``null``) when ``value`` is None;
        a CDISC CT term gets its code."""
        sequence = 1 + sum(r["TSPARMCD"] == code for r in self.dataset.rows)
        if ref == CDISC_CT and value is not None:
            # a term a new study's definition brings that CT_CODES lacks is written with no
            # code rather than refusing the export; tests hold every study's terms coded
            value_code = CT_CODES.get(value)
        self.dataset.add({"STUDYID": self.study_id, "DOMAIN": "TS", "TSSEQ": float(sequence),
                          "TSGRPID": group, "TSPARMCD": code, "TSPARM": TS_PARAMETERS[code],
                          "TSVAL": value, "TSVALNF": null if value is None else None,
                          "TSVALCD": value_code, "TSVCDREF": ref if value is not None else None},
                         positions)  # fmt: skip


def trial_summary(
    study: SdtmStudy, entries: Sequence[tuple[int, Recorded]], dm: Dataset
) -> Dataset:
    """The trial's summary parameters: the study's definition, and what the
    ledger knows as of its last entry read: the subjects enrolled, the first consent,
    the cut. The study has no end in the ledger: SENDTC is "not yet available"."""
    ts = _Summary(study.study_id)
    _definition_parameters(ts, study)
    ts.add("SDTIGVER", SDTMIG_VERSION)
    ts.add("SDTMVER", SDTM_VERSION)
    _ledger_parameters(ts, entries, dm)
    return ts.dataset


def _definition_parameters(ts: _Summary, study: SdtmStudy) -> None:
    """What the study's definition and registration state (docs/studies.md)."""
    definition, registration = study.definition, study.registration
    ts.add("TITLE", definition.title)
    ts.add("REGID", definition.study_id, ref=registration.registry, value_code=definition.study_id)
    ts.add("SPONSOR", definition.sponsor)
    ts.add("STYPE", registration.study_type, ref=CDISC_CT)
    for trial_type in registration.trial_types:
        ts.add("TTYPE", trial_type, ref=CDISC_CT)
    ts.add("TPHASE", trial_phase(definition.phase), ref=CDISC_CT)
    ts.add("INTMODEL", registration.intervention_model, ref=CDISC_CT)
    ts.add("TBLIND", registration.blinding, ref=CDISC_CT)
    ts.add("RANDOM", _yn(registration.randomised), ref=CDISC_CT)
    ts.add("TCNTRL", registration.control, ref=CDISC_CT)
    ts.add(
        "ADDON", None if registration.added_on is None else _yn(registration.added_on), ref=CDISC_CT
    )
    ts.add("HLTSUBJI", _yn(registration.healthy_subjects), ref=CDISC_CT)
    ts.add(
        "INDIC", registration.indication, ref="SNOMED", value_code=registration.indication_snomed
    )
    ts.add("TINDTP", registration.intent, ref=CDISC_CT)
    ts.add("TRT", registration.treatment)
    ts.add("PCLAS", None)  # no MED-RT class for a CD19/BCMA CAR-T product (docs/exports.md)
    for level, dose in study.levels():
        ts.add("DOSE", f"{dose:g}", group=planned_arm(level)[0])
    ts.add("DOSU", definition.dosing.unit)
    ts.add("DOSFRQ", "ONCE", ref=CDISC_CT)
    ts.add("ROUTE", registration.route, ref=CDISC_CT)
    ts.add("AGEMIN", registration.minimum_age, ref=ISO_8601_REF)
    ts.add("AGEMAX", registration.maximum_age, ref=ISO_8601_REF)
    ts.add("SEXPOP", registration.sex_population, ref=CDISC_CT)
    ts.add("PLANSUB", str(definition.planned_enrollment))
    ts.add("NARMS", str(len(definition.dose_levels)))
    ts.add("FCNTRY", study.country, ref="ISO 3166-1 Alpha-3")


def trial_phase(registered: str | None) -> str | None:
    """TPHASE's CDISC CT term of the phase as registered; None when the registration gives
    none (NCT05030779's record does not), or as given when CT has no term for it."""
    if registered is None:
        return None
    key = registered.upper().replace("PHASE", "").replace("_", "").replace(" ", "")
    return TRIAL_PHASES.get(key, registered)


def _ledger_parameters(ts: _Summary, entries: Sequence[tuple[int, Recorded]], dm: Dataset) -> None:
    """ACTSUB: the subjects enrolled; SSTDTC: the first consent of a subject enrolled
    (DM's RFICDTC, as corrected: the FDA's study start date); SENDTC: not yet available;
    DCUTDTC: the newest entry read."""
    enrolled = {str(e.subject): p for p, e in reversed(entries)
                if e.type == SubjectEnrolledV1.event_type}  # fmt: skip
    ts.add("ACTSUB", str(len(enrolled)), positions=enrolled.values())
    consented = [(str(r["RFICDTC"]), s) for r, s in zip(dm.rows, dm.sources, strict=True)
                 if r["RFICDTC"] and r["ARMCD"]]  # fmt: skip
    if consented:
        first, sources = min(consented)
        types = {p: e.type for p, e in entries}
        consent = {ConsentSignedV1.event_type, ValueCorrectedV1.event_type}
        ts.add("SSTDTC", first, ref=ISO_8601_REF,
               positions=[p for p in sources if types[p] in consent])  # fmt: skip
    else:
        ts.add("SSTDTC", None, null=NOT_YET)
    ts.add("SENDTC", None, null=NOT_YET)
    if not entries:
        ts.add("DCUTDTC", None, null=NOT_YET)
        return
    last, newest = max(entries, key=lambda entry: entry[0])
    ts.add("DCUTDTC", dtc(newest.recordedtime), ref=ISO_8601_REF, group="CUT",
           positions=[last])  # fmt: skip
    ts.add("DCUTDESC", f"LEDGER ENTRIES AT POSITIONS 1 TO {last}", group="CUT")


# --- SUPP-- ------------------------------------------------------------------------------


def supplemental(dataset: Dataset) -> Dataset:
    """``SUPP--`` of a domain: each row's ledger positions (``LEDGPOS``), and for AE the
    qualifiers it has no variable for. A row is identified by its --SEQ (DM: by subject)."""
    supp = Dataset(f"SUPP{dataset.name}", f"Supplemental Qualifiers for {dataset.name}",
                   SUPP_VARIABLES)  # fmt: skip
    sequence = f"{dataset.name}SEQ"
    rows = zip(dataset.rows, dataset.sources, dataset.qualifiers, strict=True)
    for row, positions, extra in rows:
        seq = row.get(sequence)
        keys: Row = {"STUDYID": row["STUDYID"], "RDOMAIN": dataset.name, "USUBJID": row["USUBJID"],
                     "IDVAR": sequence if seq is not None else None,
                     "IDVARVAL": str(int(float(seq))) if seq is not None else None}  # fmt: skip
        ledger = " ".join(str(p) for p in positions)
        supp.add({**keys, "QNAM": LEDGER_QUALIFIER[0], "QLABEL": LEDGER_QUALIFIER[1],
                  "QVAL": ledger, "QORIG": "Derived"}, positions)  # fmt: skip
        for name, value in sorted(extra.items()):
            supp.add({**keys, "QNAM": name, "QLABEL": AE_QUALIFIERS[name], "QVAL": value,
                      "QORIG": "CRF"}, positions)  # fmt: skip
    return supp


# --- the trace table: every row's ledger entries -----------------------------------------

TRACE_COLUMNS = ("DATASET", "USUBJID", "IDVAR", "IDVARVAL", "POSITION", "EVENT_ID", "EVENT_TYPE")


def trace_rows(
    datasets: dict[str, Dataset], entries: Sequence[tuple[int, Recorded]]
) -> list[tuple[str, ...]]:
    """One row per (dataset row, ledger entry it was derived from), with the entry's event
    id and type: the mapping table from each SDTM record back to the ledger."""
    events = {position: event for position, event in entries}
    rows: list[tuple[str, ...]] = []
    for name, dataset in datasets.items():
        if name.startswith("SUPP"):
            continue
        sequence = f"{name}SEQ"
        for row, positions in zip(dataset.rows, dataset.sources, strict=True):
            seq = row.get(sequence)
            key = (sequence, str(int(float(seq)))) if seq is not None else ("", "")
            if name == "TS":  # the trial design rows with sources: TS's derived parameters
                key = ("TSPARMCD", str(row["TSPARMCD"]))
            subject = str(row.get("USUBJID") or "")
            for position in positions:
                event = events[position]
                rows.append((name, subject, *key, str(position), str(event.id),
                             event.type))  # fmt: skip
    return rows
