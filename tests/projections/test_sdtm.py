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

from services.projections.define import define_xml
from services.projections.recorded import RecordedEvent
from services.projections.sdtm import Dataset, sdtm_datasets, trace_rows
from services.projections.xpt import TRACE_FILE, write_trace, write_xpt
from tests.cdisc import DEFINE_2_0_XSD, schema_errors
from tests.projections.trial import ledgered, trial_events

Entries = list[tuple[int, RecordedEvent]]

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
}  # fmt: skip
NUMERIC = {"DSSEQ", "EXSEQ", "AESEQ", "EXDOSE", "AEPTCD", "AESTDY", "LBSEQ", "LBSTRESN",
           "LBDY", "PCSEQ", "PCSTRESN", "PCLLOQ", "PCDY", "RSSEQ", "RSDY", "QSSEQ", "QSSTRESN",
           "QSDY"}  # fmt: skip
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
}  # fmt: skip


@pytest.fixture(scope="module")
def entries() -> Entries:
    return ledgered(trial_events())


@pytest.fixture(scope="module")
def datasets(entries: Entries) -> dict[str, Dataset]:
    return sdtm_datasets(entries)


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
    datasets = sdtm_datasets([*events, (10, correction)])
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
    datasets = sdtm_datasets(entries[: cut - 1])
    assert (len(datasets["EX"].rows), len(datasets["AE"].rows)) == (2, 0)
    assert only(datasets["DM"], SUBJID="S-001")["ACTARMCD"] is None


@pytest.mark.parametrize("name", ["DM", "DS", "EX", "AE", "LB", "PC", "RS", "QS", "SUPPAE"])
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


@pytest.mark.parametrize("name", ["DM", "DS", "EX", "AE", "LB", "PC", "RS", "QS", "SUPPAE"])
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
    xml = define_xml(datasets, datetime(2026, 12, 3, tzinfo=UTC))
    assert schema_errors(xml, DEFINE_2_0_XSD) == []


def test_define_xml_describes_each_file_written_with_its_variables_lengths_and_labels(
    datasets: dict[str, Dataset], files: Path
) -> None:
    root = etree.fromstring(define_xml(datasets, datetime(2026, 12, 3, tzinfo=UTC)))
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
