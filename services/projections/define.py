"""A minimal Define-XML 2.0 for the SDTM datasets (docs/exports.md): each dataset's
metadata (name, label, class, structure, its file) and each variable's (name, label, type,
length, origin). Pure: ``define_xml`` takes the datasets and returns the XML bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from services.projections.odm import study_oid
from services.projections.sdtm import SDTMIG_VERSION, TRIAL_DESIGN, Dataset, Variable
from shared.study import StudyDefinition

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Domain -> (SDTM class, structure)
CLASSES = {
    "TA": ("TRIAL DESIGN", "One record per planned Element per Arm"),
    "TE": ("TRIAL DESIGN", "One record per planned Element"),
    "TI": ("TRIAL DESIGN", "One record per I/E criterion"),
    "TS": ("TRIAL DESIGN", "One record per trial summary parameter value"),
    "DM": ("SPECIAL PURPOSE", "One record per subject"),
    "DS": ("EVENTS", "One record per disposition status or protocol milestone per subject"),
    "IE": ("FINDINGS", "One record per inclusion/exclusion criterion not met per subject"),
    "EX": ("INTERVENTIONS", "One record per constant dosing interval per subject"),
    "AE": ("EVENTS", "One record per adverse event per subject"),
    "LB": ("FINDINGS", "One record per lab test per time point per visit per subject"),
    "PC": ("FINDINGS", "One record per sample characteristic or time-point concentration"),
    "RS": ("FINDINGS", "One record per response assessment per time point per subject"),
    "QS": ("FINDINGS", "One record per questionnaire per question per time point per visit"),
}
SUPP = ("RELATIONSHIP", "One record per IDVAR, IDVARVAL, and QNAM value per subject")
KEYS = ("STUDYID", "DOMAIN", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM")
# The trial design datasets' own keys (SDTMIG 3.4 chapter 7), in key order.
DESIGN_KEYS = {"TA": ("STUDYID", "ARMCD", "TAETORD"), "TE": ("STUDYID", "ETCD"),
               "TI": ("STUDYID", "IETESTCD"),
               "TS": ("STUDYID", "TSPARMCD", "TSSEQ")}  # fmt: skip
# SDTMIG 3.4's Required variables among those written (Mandatory="Yes"); --SEQ too.
REQUIRED = frozenset({
    *KEYS, "SUBJID", "SITEID", "SEX", "COUNTRY", "DSTERM", "DSDECOD", "EXTRT", "AETERM",
    "AEDECOD", "LBTESTCD", "LBTEST", "PCTESTCD", "PCTEST", "RSTESTCD", "RSTEST", "QSTESTCD",
    "QSTEST", "QSCAT", "QLABEL", "IETESTCD", "IETEST", "IECAT",
    "QVAL", "QORIG",
})  # fmt: skip
# ... and the trial design's, which other domains may leave blank (DM's ARMCD).
DESIGN_REQUIRED = frozenset({"ARMCD", "ARM", "TAETORD", "ETCD", "EPOCH", "ELEMENT", "TESTRL",
                             "TSPARMCD", "TSPARM"})  # fmt: skip
INTEGERS = ("SEQ", "DY", "TAETORD")


def _d(name: str) -> str:
    return f"{{{DEF_NS}}}{name}"


def define_xml(datasets: dict[str, Dataset], created: datetime, study: StudyDefinition) -> bytes:
    """Define-XML 2.0.0 of ``datasets`` (those with rows: the files written), the datasets
    of ``study`` (their STUDYID; its Study OID the ODM export's)."""
    study_id = study.study_id
    ET.register_namespace("", ODM_NS)
    ET.register_namespace("def", DEF_NS)
    ET.register_namespace("xlink", XLINK_NS)
    root = ET.Element(f"{{{ODM_NS}}}ODM", {
        "FileType": "Snapshot", "FileOID": f"TL.DEFINE.{study_id}", "ODMVersion": "1.3.2",
        "CreationDateTime": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "Originator": "Trial Ledger", "SourceSystem": "Trial Ledger",
    })  # fmt: skip
    element = _sub(root, "Study", OID=study_oid(study))
    variables = _sub(element, "GlobalVariables")
    for tag in ("StudyName", "StudyDescription", "ProtocolName"):
        _sub(variables, tag).text = study_id
    version = _sub(element, "MetaDataVersion", {
        "OID": f"MDV.{study_id}.SDTMIG.{SDTMIG_VERSION}", "Name": f"{study_id} SDTM datasets",
        _d("DefineVersion"): "2.0.0", _d("StandardName"): "SDTM-IG",
        _d("StandardVersion"): SDTMIG_VERSION,
    })  # fmt: skip
    written = [d for d in datasets.values() if d.rows]
    for dataset in written:
        version.append(_item_group(dataset))
    for dataset in written:
        for variable in dataset.variables:
            version.append(_item_def(dataset, variable))
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _sub(parent: ET.Element, tag: str, attributes: dict[str, str] | None = None,
         **more: str) -> ET.Element:  # fmt: skip
    return ET.SubElement(parent, f"{{{ODM_NS}}}{tag}", {**(attributes or {}), **more})


def _described(element: ET.Element, text: str) -> None:
    description = _sub(element, "Description")
    _sub(description, "TranslatedText", {XML_LANG: "en"}).text = text


def _item_group(dataset: Dataset) -> ET.Element:
    name = dataset.name
    domain = name.removeprefix("SUPP") if name.startswith("SUPP") else name
    sdtm_class, structure = SUPP if name.startswith("SUPP") else CLASSES[domain]
    group = ET.Element(f"{{{ODM_NS}}}ItemGroupDef", {
        "OID": f"IG.{name}", "Name": name, "Domain": domain, "SASDatasetName": name,
        "Repeating": "No" if name == "DM" else "Yes", "IsReferenceData": "No",
        "Purpose": "Tabulation", _d("Structure"): structure, _d("Class"): sdtm_class,
        _d("ArchiveLocationID"): f"LF.{name}",
    })  # fmt: skip
    _described(group, dataset.label)
    keys = list(DESIGN_KEYS.get(name, ()))
    keys = keys or [v.name for v in dataset.variables if v.name in KEYS or v.name == f"{name}SEQ"]
    for order, variable in enumerate(dataset.variables, start=1):
        mandatory = _required(variable.name) or (
            name in TRIAL_DESIGN and variable.name in DESIGN_REQUIRED
        )
        attributes = {"ItemOID": _item_oid(dataset, variable), "OrderNumber": str(order),
                      "Mandatory": "Yes" if mandatory else "No"}  # fmt: skip
        if variable.name in keys:
            attributes["KeySequence"] = str(keys.index(variable.name) + 1)
        _sub(group, "ItemRef", attributes)
    href = {"ID": f"LF.{name}", f"{{{XLINK_NS}}}href": f"{name.lower()}.xpt"}
    leaf = ET.SubElement(group, _d("leaf"), href)
    ET.SubElement(leaf, _d("title")).text = f"{name.lower()}.xpt"
    return group


def _item_def(dataset: Dataset, variable: Variable) -> ET.Element:
    attributes = {"OID": _item_oid(dataset, variable), "Name": variable.name,
                  "SASFieldName": variable.name}  # fmt: skip
    if variable.numeric:
        attributes["DataType"] = "integer" if variable.name.endswith(INTEGERS) else "float"
        attributes["Length"] = "8"
    else:
        attributes["DataType"] = "text"
        attributes["Length"] = str(length(dataset, variable))
    item = ET.Element(f"{{{ODM_NS}}}ItemDef", attributes)
    _described(item, variable.label)
    # the trial design is the protocol's (TS's ledger parameters: docs/exports.md)
    ET.SubElement(
        item, _d("Origin"), Type="Protocol" if dataset.name in TRIAL_DESIGN else "Derived"
    )
    return item


def _required(name: str) -> bool:
    return name in REQUIRED or name.endswith("SEQ")


def length(dataset: Dataset, variable: Variable) -> int:
    """A text variable's length: its longest value (1 when all are blank), as the FDA asks."""
    return max((len(str(row[variable.name] or "")) for row in dataset.rows), default=1) or 1


def _item_oid(dataset: Dataset, variable: Variable) -> str:
    return f"IT.{dataset.name}.{variable.name}"
