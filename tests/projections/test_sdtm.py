"""SDTM datasets from a small trial's ledger made by the real services' code (no I/O but
the XPT files in a temporary directory): the values each domain takes from the events,
each row's ledger positions, and the files read back with pyreadstat, checked against
the SDTMIG 3.4 variable specifications (CDISC CORE cannot run here: docs/exports.md)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas
import pyreadstat
import pytest
from lxml import etree

import studies
from services.projections.define import define_xml
from services.projections.recorded import RecordedEvent
from services.projections.sdtm import Dataset, planned_arm, sdtm_datasets, trace_rows
from services.projections.xpt import TRACE_FILE, write_trace, write_xpt
from shared.study import load_definition, study_definition
from tests.cdisc import DEFINE_2_0_XSD, schema_errors
from tests.projections.trial import ledgered, trial_events

Entries = list[tuple[int, RecordedEvent]]
DOMAINS = ("TA", "TE", "TI", "TS", "DM", "DS", "IE", "EX", "AE", "LB", "PC", "RS", "QS")
FIRST = study_definition()  # NCT05030779: the study these tests' ledger entries are of
STUDIES = Path(studies.__file__).parent  # every packaged study definition

# SDTMIG 3.4: each domain's Required variables (present, never null) and Expected ones
# (present) that these datasets carry; the rest written are Permissible.
REQUIRED = {
    "DM": ("STUDYID", "DOMAIN", "USUBJID", "SUBJID", "SITEID", "SEX", "COUNTRY"),
    "DS": ("STUDYID", "DOMAIN", "USUBJID", "DSSEQ", "DSTERM", "DSDECOD"),
    "EX": ("STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXTRT"),
    "AE": ("STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AEDECOD"),
    "LB": ("STUDYID", "DOMAIN", "USUBJID", "LBSEQ", "LBTESTCD", "LBTEST"),
    "PC": ("STUDYID", "DOMAIN", "USUBJID", "PCSEQ", "PCTESTCD", "PCTEST"),
    "RS": ("STUDYID", "DOMAIN", "USUBJID", "RSSEQ", "RSTESTCD", "RSTEST"),
    "QS": ("STUDYID", "DOMAIN", "USUBJID", "QSSEQ", "QSTESTCD", "QSTEST", "QSCAT"),
    "SUPPAE": ("STUDYID", "RDOMAIN", "USUBJID", "QNAM", "QLABEL", "QVAL", "QORIG"),
    "TA": ("STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "EPOCH"),
    "TE": ("STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL"),
    "TS": ("STUDYID", "DOMAIN", "TSSEQ", "TSPARMCD", "TSPARM"),
    "IE": ("STUDYID", "DOMAIN", "USUBJID", "IESEQ", "IETESTCD", "IETEST", "IECAT"),
    "TI": ("STUDYID", "DOMAIN", "IETESTCD", "IETEST", "IECAT"),
}
EXPECTED = {
    "DM": ("RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC", "DTHDTC", "DTHFL",
           "ARMCD", "ARM", "ACTARMCD", "ACTARM", "ARMNRS"),
    "DS": ("DSCAT", "DSSTDTC"),
    "EX": ("EXDOSE", "EXDOSU", "EXSTDTC", "EXENDTC"),
    "AE": ("AESER", "AEREL", "AEOUT", "AESTDTC", "AEENDTC", "AETOXGR"),
    "LB": ("LBORRES", "LBORRESU", "LBSTRESC", "LBSTRESN", "LBSTRESU", "LBNRIND", "LBDTC"),
    "PC": ("PCORRES", "PCORRESU", "PCSTRESC", "PCSTRESN", "PCSTRESU", "PCLLOQ", "PCDTC"),
    "RS": ("RSORRES", "RSSTRESC", "RSDTC"),
    "QS": ("QSORRES", "QSSTRESC", "QSSTRESN", "QSDTC"),
    "TA": ("TABRANCH", "TATRANS"),
    "TS": ("TSVAL", "TSVALCD", "TSVCDREF", "TSVCDVER"),
    "IE": ("IEORRES", "IESTRESC", "IEDTC"),
}  # fmt: skip
NUMERIC = {"DSSEQ", "EXSEQ", "AESEQ", "EXDOSE", "AEPTCD", "AESTDY", "LBSEQ", "LBSTRESN",
           "LBDY", "PCSEQ", "PCSTRESN", "PCLLOQ", "PCDY", "RSSEQ", "RSDY", "QSSEQ", "QSSTRESN",
           "QSDY", "TAETORD", "TSSEQ", "IESEQ"}  # fmt: skip
# ISO 8601 as SDTM writes it: a date, or a date and time to the second (no zone: UTC).
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")
# CDISC Controlled Terminology for the coded variables written (NY, OUT, ARMNRS, SEX).
TERMINOLOGY = {
    "AESER": {"Y", "N"}, "AESDTH": {"Y", "N"}, "AESLIFE": {"Y", "N"}, "AESHOSP": {"Y", "N"},
    "AESDISAB": {"Y", "N"}, "AESCONG": {"Y", "N"}, "AESMIE": {"Y", "N"}, "DTHFL": {"Y"},
    "SEX": {"M", "F", "U", "UNDIFFERENTIATED"},
    "AEOUT": {"RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
              "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN"},
    "LBNRIND": {"LOW", "NORMAL", "HIGH", "ABNORMAL"},
    "PCSPEC": {"BLOOD", "BONE MARROW"},
    "ARMNRS": {"SCREEN FAILURE", "NOT ASSIGNED", "ASSIGNED, NOT TREATED",
               "UNPLANNED TREATMENT", "NOT TREATED"},
    "EPOCH": {"SCREENING", "TREATMENT", "FOLLOW-UP"},
    "TSVALNF": {"NI", "NA", "UNK", "ASKU", "NAV", "NASK", "PINF", "NINF", "OTH"},  # ISO 21090
    "IECAT": {"INCLUSION", "EXCLUSION"}, "IEORRES": {"Y", "N"}, "IESTRESC": {"Y", "N"},
    "TSVCDREF": {"CDISC CT", "ISO 8601", "SNOMED", "ClinicalTrials.gov", "ISO 3166-1 Alpha-3"},
}  # fmt: skip
# CDISC CT TSPARMCD -> TSPARM (C66738, C67152) for the parameters written, and the NCI
# codes of the CDISC CT terms TS's values take (TSVALCD when TSVCDREF is CDISC CT).
TS_PARAMETERS = {
    "ACTSUB": "Actual Number of Subjects", "ADDON": "Added on to Existing Treatments",
    "AGEMAX": "Planned Maximum Age of Subjects", "AGEMIN": "Planned Minimum Age of Subjects",
    "DCUTDESC": "Data Cutoff Description", "DCUTDTC": "Data Cutoff Date",
    "DOSE": "Dose per Administration", "DOSFRQ": "Dosing Frequency", "DOSU": "Dose Units",
    "FCNTRY": "Planned Country of Investigational Sites", "HLTSUBJI": "Healthy Subject Indicator",
    "INDIC": "Trial Disease/Condition Indication", "INTMODEL": "Intervention Model",
    "NARMS": "Planned Number of Arms", "PCLAS": "Pharmacological Class",
    "PLANSUB": "Planned Number of Subjects", "RANDOM": "Trial is Randomized",
    "REGID": "Registry Identifier", "ROUTE": "Route of Administration",
    "SDTIGVER": "SDTM IG Version", "SDTMVER": "SDTM Version", "SENDTC": "Study End Date",
    "SEXPOP": "Sex of Participants", "SPONSOR": "Clinical Study Sponsor",
    "SSTDTC": "Study Start Date", "STYPE": "Study Type", "TBLIND": "Trial Blinding Schema",
    "TCNTRL": "Control Type", "TINDTP": "Trial Intent Type", "TITLE": "Trial Title",
    "TPHASE": "Trial Phase Classification", "TRT": "Investigational Therapy or Treatment",
    "TTYPE": "Trial Type",
}  # fmt: skip
CT_CODES = {
    ("STYPE", "INTERVENTIONAL"): "C98388", ("TTYPE", "SAFETY"): "C49667",
    ("TTYPE", "EFFICACY"): "C49666", ("INTMODEL", "SINGLE GROUP"): "C82640",
    ("TBLIND", "OPEN LABEL"): "C49659", ("RANDOM", "N"): "C49487", ("TCNTRL", "NONE"): "C41132",
    ("HLTSUBJI", "N"): "C49487", ("TINDTP", "TREATMENT"): "C49656",
    ("DOSFRQ", "ONCE"): "C64576", ("ROUTE", "INTRAVENOUS"): "C38276",
    ("SEXPOP", "BOTH"): "C49636",
}  # fmt: skip


@pytest.fixture(scope="module")
def entries() -> Entries:
    """The small trial, and S-009 who failed screening on an inclusion and an exclusion."""
    events = ledgered(trial_events())
    return [*events, *screen_failure(events, ["platelets", "hiv_infection"])]


def screen_failure(events: Entries, failed_criteria: list[str]) -> Entries:
    """S-009 registered, consented (2026-10-01) and failed screening on ``failed_criteria``,
    at positions after ``events``."""
    kinds = {e.type: e for _, e in events}

    def failed(n: int, kind: str, **data: Any) -> RecordedEvent:
        e = kinds.get(kind, kinds["SubjectRegistered.v1"])
        return RecordedEvent(e.id.__class__(int=n), e.source, kind, "S-009", e.time,
                             e.recordedtime, e.data | data)  # fmt: skip

    first = max(p for p, _ in events) + 1
    return [(first, failed(first, "SubjectRegistered.v1")),
            (first + 1, failed(first + 1, "ConsentSigned.v1", signed_on="2026-10-01")),
            (first + 2, failed(first + 2, "ScreenFailed.v1", failed_criteria=failed_criteria,
                               rule_version="NCT05030779/def-1/eligibility/2"))]  # fmt: skip


@pytest.fixture(scope="module")
def datasets(entries: Entries) -> dict[str, Dataset]:
    return sdtm_datasets(entries, FIRST)


@pytest.fixture(scope="module")
def files(datasets: dict[str, Dataset], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sdtm")
    for dataset in datasets.values():
        write_xpt(dataset, directory)
    return directory


def read(files: Path, name: str) -> tuple[pandas.DataFrame, Any]:
    return pyreadstat.read_xport(str(files / f"{name.lower()}.xpt"))


def only(dataset: Dataset, **match: Any) -> dict[str, Any]:
    (row,) = [r for r in dataset.rows if all(r[k] == v for k, v in match.items())]
    return row


def test_dm_has_a_row_per_registered_subject_with_its_arm_and_reference_times(
    datasets: dict[str, Dataset],
) -> None:
    treated = only(datasets["DM"], SUBJID="S-001")
    assert (treated["USUBJID"], treated["SITEID"], treated["RFICDTC"]) == (
        "NCT05030779-S-001", "ZJU-1", "2026-11-02"
    )  # fmt: skip
    assert (treated["ARMCD"], treated["ACTARMCD"], treated["ARMNRS"]) == ("DL1", "DL1", None)
    assert treated["RFXSTDTC"] == "2026-11-18T09:00:00"


def test_an_enrolled_subject_not_yet_infused_has_no_actual_arm_and_says_why(
    datasets: dict[str, Dataset],
) -> None:
    waiting = only(datasets["DM"], SUBJID="S-002")
    assert (waiting["ACTARMCD"], waiting["ARMNRS"], waiting["RFSTDTC"]) == (
        None, "ASSIGNED, NOT TREATED", None
    )  # fmt: skip


def test_ds_records_consent_eligibility_and_enrollment_in_ledger_order(
    datasets: dict[str, Dataset],
) -> None:
    rows = [r for r in datasets["DS"].rows if r["USUBJID"] == "NCT05030779-S-001"]
    assert [(r["DSSEQ"], r["DSDECOD"], r["DSCAT"]) for r in rows] == [
        (1.0, "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE"),
        (2.0, "ELIGIBILITY CRITERIA MET", "PROTOCOL MILESTONE"),
        (3.0, "ENROLLED", "PROTOCOL MILESTONE"),
    ]


def test_ex_holds_the_infusion_dose_in_millions_of_cells_per_kg_and_lymphodepletion(
    datasets: dict[str, Dataset],
) -> None:
    rows = datasets["EX"].rows
    assert [(r["EXTRT"], r["EXDOSE"], r["EXDOSU"]) for r in rows] == [
        ("FLUDARABINE", 25.0, "mg/m2"),
        ("CYCLOPHOSPHAMIDE", 250.0, "mg/m2"),
        ("CD19/BCMA CAR-T CELLS", 1.0, "10^6 cells/kg"),
    ]


def test_ae_folds_grade_seriousness_causality_and_resolution_into_one_row(
    datasets: dict[str, Dataset],
) -> None:
    (row,) = datasets["AE"].rows
    assert (row["AEDECOD"], row["AETOXGR"], row["AESER"], row["AESHOSP"]) == (
        "CYTOKINE RELEASE SYNDROME", "2", "Y", "Y"
    )  # fmt: skip
    assert (row["AEREL"], row["AEOUT"], row["AEENDTC"], row["AESTDY"]) == (
        "PROBABLE", "RECOVERED/RESOLVED", "2026-11-29", 3.0
    )  # fmt: skip


def test_suppae_names_the_grading_scale_and_the_dlt_adjudication(
    datasets: dict[str, Dataset],
) -> None:
    qualifiers = {r["QNAM"]: r["QVAL"] for r in datasets["SUPPAE"].rows}
    assert qualifiers["AEGRSCL"] == "ASTCT-CRS"
    assert (qualifiers["AEDLTFL"], qualifiers["AERELLD"], qualifiers["AETRTEM"]) == (
        "N", "UNLIKELY", "Y"
    )  # fmt: skip


def test_lb_holds_each_autoantibody_result_with_its_units_range_and_flag(
    datasets: dict[str, Dataset],
) -> None:
    (row,) = datasets["LB"].rows
    assert (row["LBTESTCD"], row["LBORRES"], row["LBORRESU"], row["LBORNRHI"]) == (
        "DSDNAAB", "200", "IU/mL", "100"
    )  # fmt: skip
    assert (row["LBNRIND"], row["LBDY"]) == ("HIGH", 14.0)


def test_pc_holds_car_t_kinetics_below_the_lloq_as_blq_with_no_number(
    datasets: dict[str, Dataset],
) -> None:
    (row,) = datasets["PC"].rows
    assert (row["PCTESTCD"], row["PCSPEC"], row["PCORRES"], row["PCLLOQ"]) == (
        "CARCD19", "BLOOD", "20", 50.0
    )  # fmt: skip
    assert (row["PCSTRESC"], row["PCSTRESN"]) == ("BLQ", None)


def test_rs_holds_the_response_and_each_criterion_the_remission_was_derived_by(
    datasets: dict[str, Dataset],
) -> None:
    results = {r["RSTESTCD"]: r["RSORRES"] for r in datasets["RS"].rows}
    assert results["OVRLRESP"] == "COMPLETE"
    assert {results["DORIS"], results["LLDAS"]} <= {"Y", "N"}
    assert "SRI4" not in results  # the visit had no BILAG scoring


def test_qs_holds_each_sledai_2k_descriptor_and_the_scores_of_each_visit(
    datasets: dict[str, Dataset], entries: Entries
) -> None:
    visits = [e for _, e in entries if e.type == "DiseaseActivityAssessed.v1"]
    rows = datasets["QS"].rows
    assert len(rows) == len(visits) * (24 + 3)
    first = {r["QSTESTCD"]: r for r in rows[:27]}
    assert (first["SLED09"]["QSTEST"], first["SLED09"]["QSORRES"]) == ("Arthritis", "Y")
    assert first["SLED01"]["QSORRES"] == "N"
    assert first["SLEDTOT"]["QSSTRESN"] == float(visits[0].data["sledai_2k"])
    assert (first["PGA"]["QSORRES"], first["PGA"]["QSEVLINT"]) == ("1.5", "-P30D")


def test_every_row_names_the_ledger_entries_it_was_derived_from(
    datasets: dict[str, Dataset], entries: Entries
) -> None:
    types = {position: event.type for position, event in entries}
    (ae_sources,) = datasets["AE"].sources
    assert [types[p] for p in ae_sources] == [
        "AdverseEventReported.v1", "AdverseEventGraded.v1", "SeriousnessAssessed.v1",
        "CausalityAssessed.v1", "DltAdjudicated.v1", "AdverseEventResolved.v1",
    ]  # fmt: skip
    ledger = {r["USUBJID"]: r["QVAL"] for r in datasets["SUPPDM"].rows if r["QNAM"] == "LEDGPOS"}
    assert ledger["NCT05030779-S-002"] == "10 11 18"


def test_a_correction_of_the_consent_day_is_the_day_dm_shows_and_traces_to() -> None:
    events = ledgered(trial_events()[:9])  # S-001 up to enrollment
    position, consent = next((p, e) for p, e in events if e.type == "ConsentSigned.v1")
    corrected = consent.data | {"field": "consent.signed_on", "old_value": "2026-11-02",
                                "new_value": "2026-11-03", "reason": "date misread"}  # fmt: skip
    correction = RecordedEvent(consent.id.__class__(int=1), consent.source, "ValueCorrected.v1",
                               "S-001", consent.time, consent.recordedtime, corrected)  # fmt: skip
    datasets = sdtm_datasets([*events, (10, correction)], FIRST)
    (row,) = datasets["DM"].rows
    assert row["RFICDTC"] == "2026-11-03"
    assert 10 in datasets["DM"].sources[0] and position in datasets["DM"].sources[0]


def test_the_trace_table_gives_each_rows_event_ids(
    datasets: dict[str, Dataset], entries: Entries, tmp_path: Path
) -> None:
    path = write_trace(trace_rows(datasets, entries), tmp_path)
    assert path.name == TRACE_FILE
    rows = list(csv.DictReader(path.read_text("utf-8").splitlines()))
    ids = {str(e.id): p for p, e in entries}
    ae = [r for r in rows if r["DATASET"] == "AE"]
    assert [int(r["POSITION"]) for r in ae] == [ids[r["EVENT_ID"]] for r in ae]
    assert {r["EVENT_TYPE"] for r in ae} >= {"AdverseEventReported.v1", "DltAdjudicated.v1"}


def test_an_as_of_cut_before_the_infusion_has_no_exposure_and_no_adverse_event(
    entries: Entries,
) -> None:
    cut = next(p for p, e in entries if e.type == "CarTInfused.v1")
    datasets = sdtm_datasets(entries[: cut - 1], FIRST)
    assert (len(datasets["EX"].rows), len(datasets["AE"].rows)) == (2, 0)
    assert only(datasets["DM"], SUBJID="S-001")["ACTARMCD"] is None


def test_the_export_holds_the_trial_design_each_domain_and_its_supplement(
    datasets: dict[str, Dataset],
) -> None:
    subject_domains = DOMAINS[4:]
    assert list(datasets) == [*DOMAINS, *(f"SUPP{name}" for name in subject_domains)]


def test_every_arm_dm_can_assign_or_treat_is_a_trial_arm_of_the_same_name(
    datasets: dict[str, Dataset], entries: Entries
) -> None:
    arms = {r["ARMCD"]: r["ARM"] for r in datasets["TA"].rows}
    assert list(arms) == ["DL1", "DL2", "DL3", "DL4"]
    for level in range(1, 5):  # the dose levels the enrollment and infusion contracts accept
        code, arm = planned_arm(level)
        assert arms[code] == arm
    assert {r["ARMCD"] for r in datasets["DM"].rows} - {None} <= set(arms)
    for row in _rows(datasets["DM"]):
        for code, name in ((row["ARMCD"], row["ARM"]), (row["ACTARMCD"], row["ACTARM"])):
            assert code is None or arms[code] == name, row["USUBJID"]


def test_each_arm_passes_its_elements_in_order_each_defined_once_in_te(
    datasets: dict[str, Dataset],
) -> None:
    elements = {str(r["ETCD"]): r for r in _rows(datasets["TE"])}
    assert len(elements) == len(datasets["TE"].rows)
    assert all(len(code) <= 8 for code in elements)
    paths: dict[str, list[tuple[float, str, str]]] = {}
    for row in _rows(datasets["TA"]):
        assert row["ELEMENT"] == elements[row["ETCD"]]["ELEMENT"]
        paths.setdefault(str(row["ARMCD"]), []).append(
            (float(row["TAETORD"]), str(row["ETCD"]), str(row["EPOCH"]))
        )
    for code, path in paths.items():
        level = code.removeprefix("DL")
        assert path == [(1.0, "SCRN", "SCREENING"), (2.0, "LD", "TREATMENT"),
                        (3.0, f"CART{level}", "TREATMENT"), (4.0, "FU", "FOLLOW-UP")]  # fmt: skip
    assert set(elements) == {etcd for path in paths.values() for _, etcd, _ in path}
    # no gap between elements (SDTMIG 7.2.2): each ends at the instant the next one starts
    for number in range(1, 5):
        infusion = elements[f"CART{number}"]
        assert infusion["TESTRL"].startswith(elements["LD"]["TEENRL"])
        assert infusion["TEENRL"] == elements["FU"]["TESTRL"]
        assert f"where the dose is {number} x10^6 CAR-T cells/kg" in infusion["TESTRL"]
    assert "study day 28" in elements["FU"]["TESTRL"]  # the DLT window (shared.clinical)
    assert "2 years" in elements["FU"]["TEENRL"]


def test_ts_gives_each_value_or_the_reason_it_has_none_with_its_code(
    datasets: dict[str, Dataset],
) -> None:
    rows = _rows(datasets["TS"])
    assert {r["TSPARMCD"] for r in rows} == set(TS_PARAMETERS)
    for row in rows:
        code = row["TSPARMCD"]
        assert row["TSPARM"] == TS_PARAMETERS[code], code
        assert (row["TSVAL"] is None) != (row["TSVALNF"] is None), code
        assert row["TSVALCD"] is None or row["TSVCDREF"] is not None, code
        if row["TSVCDREF"] == "CDISC CT":
            assert row["TSVALCD"] == CT_CODES[(code, row["TSVAL"])], code
    sequences = [(r["TSPARMCD"], r["TSSEQ"]) for r in rows]
    assert len(set(sequences)) == len(sequences)
    values = {(r["TSPARMCD"], r["TSSEQ"]): r["TSVAL"] for r in rows}
    assert (values[("REGID", 1.0)], values[("PLANSUB", 1.0)]) == ("NCT05030779", "9")
    doses = [(r["TSGRPID"], r["TSVAL"]) for r in rows if r["TSPARMCD"] == "DOSE"]
    assert doses == [("DL1", "1"), ("DL2", "2"), ("DL3", "3"), ("DL4", "4")]
    assert values[("NARMS", 1.0)] == str(len({r["ARMCD"] for r in datasets["TA"].rows}))
    assert values[("DOSU", 1.0)] == datasets["EX"].rows[-1]["EXDOSU"]  # the infusion's unit


def _rows(dataset: Dataset) -> list[dict[str, Any]]:
    return list(dataset.rows)


def _ts(dataset: Dataset) -> dict[str, dict[str, Any]]:
    return {str(r["TSPARMCD"]): r for r in dataset.rows}


def test_ts_derives_the_subjects_enrolled_the_first_consent_and_the_cut_from_the_ledger(
    datasets: dict[str, Dataset], entries: Entries
) -> None:
    ts = _ts(datasets["TS"])
    types = {position: event.type for position, event in entries}
    sources = dict(zip((r["TSPARMCD"] for r in datasets["TS"].rows), datasets["TS"].sources,
                       strict=True))  # fmt: skip
    assert ts["ACTSUB"]["TSVAL"] == "2"  # S-001 and S-002 enrolled
    assert [types[p] for p in sources["ACTSUB"]] == ["SubjectEnrolled.v1"] * 2
    assert ts["SSTDTC"]["TSVAL"] == min(r["RFICDTC"] for r in _rows(datasets["DM"]) if r["ARMCD"])
    assert [types[p] for p in sources["SSTDTC"]] == ["ConsentSigned.v1"]
    assert (ts["SENDTC"]["TSVAL"], ts["SENDTC"]["TSVALNF"]) == (None, "NAV")
    last, newest = entries[-1]
    assert ts["DCUTDTC"]["TSVAL"] == newest.recordedtime.astimezone(UTC).replace(
        tzinfo=None
    ).isoformat(timespec="seconds")
    assert ts["DCUTDESC"]["TSVAL"] == f"LEDGER ENTRIES AT POSITIONS 1 TO {last}"
    assert sources["DCUTDTC"] == (last,) and not sources["TITLE"]


def test_ts_as_of_a_cut_before_any_enrollment_has_no_subject_and_no_start_yet(
    entries: Entries,
) -> None:
    registered = next(p for p, e in entries if e.type == "SubjectRegistered.v1")
    ts = _ts(sdtm_datasets(entries[:registered], FIRST)["TS"])
    assert ts["ACTSUB"]["TSVAL"] == "0"
    assert (ts["SSTDTC"]["TSVAL"], ts["SSTDTC"]["TSVALNF"]) == (None, "NAV")
    empty = _ts(sdtm_datasets([], FIRST)["TS"])
    assert (empty["DCUTDTC"]["TSVALNF"], "DCUTDESC" in empty) == ("NAV", False)


def test_ts_start_date_follows_a_correction_of_the_first_consent() -> None:
    events = ledgered(trial_events()[:9])
    consent = next(e for _, e in events if e.type == "ConsentSigned.v1")
    corrected = consent.data | {"field": "consent.signed_on", "old_value": "2026-11-02",
                                "new_value": "2026-10-30", "reason": "date misread"}  # fmt: skip
    correction = RecordedEvent(consent.id.__class__(int=2), consent.source, "ValueCorrected.v1",
                               "S-001", consent.time, consent.recordedtime, corrected)  # fmt: skip
    datasets = sdtm_datasets([*events, (10, correction)], FIRST)
    start = datasets["TS"].rows.index(_ts(datasets["TS"])["SSTDTC"])
    assert datasets["TS"].rows[start]["TSVAL"] == "2026-10-30"
    assert 10 in datasets["TS"].sources[start]


def test_ts_start_date_is_a_consent_of_a_subject_enrolled_not_of_a_screen_failure() -> None:
    events = ledgered(trial_events()[:9])  # S-001 up to enrollment, consent 2026-11-02
    datasets = sdtm_datasets([*events, *screen_failure(events, ["hiv_infection"])], FIRST)
    assert only(datasets["DM"], SUBJID="S-009")["RFICDTC"] == "2026-10-01"
    assert _ts(datasets["TS"])["SSTDTC"]["TSVAL"] == "2026-11-02"


def test_ie_holds_each_criterion_a_screen_failure_did_not_meet_and_no_eligible_subject(
    datasets: dict[str, Dataset], entries: Entries
) -> None:
    ie = datasets["IE"]
    failed_at = next(p for p, e in entries if e.type == "ScreenFailed.v1")
    rows = [(r["USUBJID"], r["IESEQ"], r["IETESTCD"], r["IECAT"], r["IEORRES"], r["IESTRESC"])
            for r in ie.rows]  # fmt: skip
    assert rows == [
        ("NCT05030779-S-009", 1.0, "IN06", "INCLUSION", "N", "N"),  # platelets: not met
        ("NCT05030779-S-009", 2.0, "EX06", "EXCLUSION", "Y", "Y"),  # HIV: applies
    ]
    assert ie.rows[0]["IETEST"] == "platelets >= 30 x10^9/L"
    assert ie.sources == [(failed_at,), (failed_at,)]
    screen_failure_ds = only(datasets["DS"], USUBJID="NCT05030779-S-009", DSDECOD="SCREEN FAILURE")
    assert {r["IEDTC"] for r in ie.rows} == {screen_failure_ds["DSSTDTC"]}


def test_ti_lists_every_criterion_of_the_study_definition_and_ie_uses_its_names(
    datasets: dict[str, Dataset],
) -> None:
    definition = study_definition()
    ti = datasets["TI"]
    assert [r["IETESTCD"] for r in ti.rows] == [
        c.test_code for c in definition.eligibility.criteria
    ]
    assert {r["TIVERS"] for r in ti.rows} == {str(definition.definition_version)}
    assert only(ti, IETESTCD="EX08")["TIRL"] == "creatinine <= 2.5 mg/dL"
    named = {r["IETESTCD"]: (r["IETEST"], r["IECAT"]) for r in ti.rows}
    for row in datasets["IE"].rows:
        assert named[str(row["IETESTCD"])] == (row["IETEST"], row["IECAT"])


def test_a_criterion_the_definition_does_not_know_is_unmapped_in_ie_not_dropped() -> None:
    events = ledgered(trial_events()[:9])
    ie = sdtm_datasets([*events, *screen_failure(events, ["retired_criterion"])], FIRST)["IE"]
    assert [(r["IETESTCD"], r["IETEST"], r["IECAT"]) for r in ie.rows] == [
        ("UNMAPPED", "retired_criterion", None)
    ]


def test_the_trace_table_names_the_entries_of_ts_derived_parameters(
    datasets: dict[str, Dataset], entries: Entries
) -> None:
    types = {str(position): event.type for position, event in entries}
    ts = [row for row in trace_rows(datasets, entries) if row[0] == "TS"]
    assert {(row[2], row[3]) for row in ts} == {
        ("TSPARMCD", "ACTSUB"),
        ("TSPARMCD", "SSTDTC"),
        ("TSPARMCD", "DCUTDTC"),
    }
    assert all(row[1] == "" and types[row[4]] == row[6] for row in ts)


@pytest.mark.parametrize("name", [*DOMAINS, "SUPPAE"])
def test_each_xpt_file_reads_back_with_its_values_member_and_labels(
    datasets: dict[str, Dataset], files: Path, name: str
) -> None:
    frame, meta = read(files, name)
    dataset = datasets[name]
    assert (meta.table_name, meta.file_label) == (name, dataset.label)
    assert list(frame.columns) == [v.name for v in dataset.variables]
    assert meta.column_labels == [v.label for v in dataset.variables]
    written = [[_blank(row[v.name]) for v in dataset.variables] for row in dataset.rows]
    assert [[_blank(value) for value in row] for row in frame.itertuples(index=False)] == written


@pytest.mark.parametrize("name", [*DOMAINS, "SUPPAE"])
def test_each_xpt_file_meets_the_sdtmig_variable_specifications(files: Path, name: str) -> None:
    frame, meta = read(files, name)
    assert len(name) <= 8 and len(meta.file_label) <= 40
    for column, label in zip(frame.columns, meta.column_labels, strict=True):
        assert re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", column), column
        assert len(label) <= 40, label
        assert (column in NUMERIC) == (meta.readstat_variable_types[column] == "double"), column
        if meta.readstat_variable_types[column] == "string":
            assert meta.variable_storage_width[column] <= 200, column
    for column in REQUIRED[name]:
        assert column in frame.columns and (frame[column].astype(str) != "").all(), column
    for column in EXPECTED.get(name, ()):
        assert column in frame.columns, column
    for column in (c for c in frame.columns if c.endswith("DTC")):
        assert all(ISO_8601.match(v) for v in frame[column] if v), column
    for column, terms in TERMINOLOGY.items():
        if column in frame.columns:
            assert set(frame[column]) - {""} <= terms, column


def _blank(value: Any) -> Any:
    """A missing value as the file holds it: "" for text, NaN (read as None) for numbers."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value


def test_define_xml_has_no_error_against_the_define_xml_2_0_schema(
    datasets: dict[str, Dataset],
) -> None:
    xml = define_xml(datasets, datetime(2026, 12, 3, tzinfo=UTC), FIRST)
    assert schema_errors(xml, DEFINE_2_0_XSD) == []


def test_define_xml_describes_each_file_written_with_its_variables_lengths_and_labels(
    datasets: dict[str, Dataset], files: Path
) -> None:
    root = etree.fromstring(define_xml(datasets, datetime(2026, 12, 3, tzinfo=UTC), FIRST))
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    groups = root.findall(".//odm:ItemGroupDef", ns)
    assert sorted(f"{g.get('Name').lower()}.xpt" for g in groups) == sorted(
        p.name for p in files.glob("*.xpt") if read(files, p.stem)[0].shape[0]
    )
    items = {i.get("OID"): i for i in root.findall(".//odm:ItemDef", ns)}
    for name in ("DM", "AE", "LB"):
        _, meta = read(files, name)
        for column, label in zip(meta.column_names, meta.column_labels, strict=True):
            item = items[f"IT.{name}.{column}"]
            assert item.findtext("odm:Description/odm:TranslatedText", namespaces=ns) == label
            if meta.readstat_variable_types[column] == "string":
                assert int(item.get("Length")) == meta.variable_storage_width[column], column


def test_define_xml_keys_the_trial_design_by_its_own_keys_from_the_protocol(
    datasets: dict[str, Dataset],
) -> None:
    root = etree.fromstring(define_xml(datasets, datetime(2026, 12, 3, tzinfo=UTC), FIRST))
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.0"}
    keys = {"TA": ["STUDYID", "ARMCD", "TAETORD"], "TE": ["STUDYID", "ETCD"],
            "TI": ["STUDYID", "IETESTCD"], "TS": ["STUDYID", "TSPARMCD", "TSSEQ"]}  # fmt: skip
    for name, expected in keys.items():
        group = root.find(f".//odm:ItemGroupDef[@OID='IG.{name}']", ns)
        refs = sorted((int(r.get("KeySequence")), r.get("ItemOID"))
                      for r in group.findall("odm:ItemRef", ns)
                      if r.get("KeySequence"))  # fmt: skip
        assert [oid.removeprefix(f"IT.{name}.") for _, oid in refs] == expected, name
        assert group.get(f"{{{ns['def']}}}Class") == "TRIAL DESIGN", name
    mandatory = {r.get("ItemOID"): r.get("Mandatory") for r in root.iterfind(".//odm:ItemRef", ns)}
    assert (mandatory["IT.TA.ARMCD"], mandatory["IT.DM.ARMCD"]) == ("Yes", "No")
    order = root.find(".//odm:ItemDef[@OID='IT.TA.TAETORD']", ns)
    assert order.get("DataType") == "integer"
    assert order.find("def:Origin", ns).get("Type") == "Protocol"


def test_another_studys_datasets_name_that_study_and_its_design_not_the_first_ones(
    entries: Entries, tmp_path: Path
) -> None:
    """SYN-CART-2's ledger gives SYN-CART-2's datasets: its STUDYID and USUBJIDs, arms of
    its dose levels, its DLT window, criteria, registration and define.xml; nothing of
    NCT05030779 (the entries are the fixture's, labelled as the other study's ledger would
    label its own)."""
    second = study_definition("SYN-CART-2")
    datasets = sdtm_datasets(entries, second)
    rows = [r for d in datasets.values() for r in d.rows]
    assert {r["STUDYID"] for r in rows} == {"SYN-CART-2"}
    assert {str(r["USUBJID"]).split("-S-")[0] for r in rows if r.get("USUBJID")} == {"SYN-CART-2"}
    assert not [r for r in rows if any("NCT05030779" in str(v) for v in r.values())]
    ts = _ts(datasets["TS"])
    assert (ts["REGID"]["TSVAL"], ts["PLANSUB"]["TSVAL"], ts["FCNTRY"]["TSVAL"]) == (
        "SYN-CART-2",
        "18",
        "DEU",
    )
    doses = [(r["TSGRPID"], r["TSVAL"]) for r in datasets["TS"].rows if r["TSPARMCD"] == "DOSE"]
    assert doses == [("DL1", "0.5"), ("DL2", "1"), ("DL3", "2")]
    assert {r["ARMCD"] for r in datasets["TA"].rows} == {"DL1", "DL2", "DL3"}
    assert only(datasets["TE"], ETCD="FU")["TESTRL"].startswith(
        "End of the DLT window: the end of study day 21 "
    )
    assert [r["IETESTCD"] for r in datasets["TI"].rows] == [
        c.test_code for c in second.eligibility.criteria
    ]
    assert {r["COUNTRY"] for r in datasets["DM"].rows} == {"DEU"}
    infusions = [r for r in datasets["EX"].rows if r["EXCAT"] == "CAR-T INFUSION"]
    assert {r["EXTRT"] for r in infusions} == {second.registration.treatment}
    define = define_xml(datasets, datetime(2026, 12, 4, tzinfo=UTC), second)
    assert b'OID="ST.SYN-CART-2"' in define and b"NCT05030779" not in define
    assert schema_errors(define, DEFINE_2_0_XSD) == []
    assert (ts["TPHASE"]["TSVAL"], ts["TPHASE"]["TSVALCD"]) == ("PHASE I TRIAL", "C15600")


@pytest.mark.parametrize(
    "path", sorted(STUDIES.glob("*/definition.json")), ids=lambda p: p.parent.name
)
def test_every_study_definitions_summary_terms_have_their_cdisc_codes(path: Path) -> None:
    """A definition's registration terms TS states as CDISC CT each have their code: a new
    study's term missing from the table fails here, not silently in an export."""
    ts = sdtm_datasets([], load_definition(path))["TS"]
    uncoded = [(r["TSPARMCD"], r["TSVAL"]) for r in ts.rows
               if r["TSVCDREF"] == "CDISC CT" and r["TSVALCD"] is None]  # fmt: skip
    assert uncoded == []
