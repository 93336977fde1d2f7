"""The ledger as CDISC ODM 1.3.2 (docs/exports.md): study metadata, the clinical data of
every subject with an ``AuditRecord`` on each value, and the Part 11 signatures.

Pure: ``odm_document`` takes ledger entries (position, event) and returns the XML bytes.
Each event type is a form (``FormDef``, one ``ItemGroupDef``, an ``ItemDef`` per field of
the event's own); each subject event is one ``FormData`` in the subject's one repeating
study event "Ledger", keyed by its ledger position. Every ``ItemData`` carries who
(``UserRef``), where (``LocationRef``: the actor's site), when (``DateTimeStamp``: the
server's UTC time), why (``ReasonForChange``) and ``SourceID`` (ledger position and event
id). A ``RecordSigned`` event is a form of its own and a ``Signature`` on the form of the
event it signs, with a ``SignatureDef`` per meaning. The file is ``Transactional``: each
form is an insert, as the ledger only appends; a correction is a form of its own
(``ValueCorrected.v1``: field, old and new value, with its reason).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from services.projections.clinical_endpoints import CRS_SCALE, ICANS_SCALE
from services.projections.recorded import COMMON_FIELDS, RECORD_SIGNED, Recorded
from shared.contracts.security import AccessDeniedV1
from shared.kernel.provenance import Meaning
from shared.study import StudyDefinition

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MDV_OID = "MDV.TL.1"
STUDY_EVENT_OID = "SE.LEDGER"
UNKNOWN = "unknown"  # an event whose actor names no user or site (none is published so)

# Fields whose values come from a closed list: each is an ODM CodeList (docs/exports.md).
CODE_LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dose_level": ("integer", ("1", "2", "3", "4")),
    "approved_level": ("integer", ("1", "2", "3", "4")),
    "level_reviewed": ("integer", ("1", "2", "3", "4")),
    "grade": ("integer", ("0", "1", "2", "3", "4", "5")),
    "old_grade": ("integer", ("0", "1", "2", "3", "4", "5")),
    "scale": ("text", ("CTCAE", CRS_SCALE, ICANS_SCALE)),
    "meaning": ("text", tuple(m.value for m in Meaning)),
    "response": ("text", ("complete", "partial", "stable", "progression")),
    "product": ("text", ("CD19", "BCMA", "CD19/BCMA")),
}
# What a signature of each meaning stands for (Part 11 §11.50(a)(3), §11.100, §11.200).
LEGAL_REASON = (
    "21 CFR Part 11 electronic signature (11.50, 11.100, 11.200): signed by its owner after "
    "re-authentication; its meaning is shown with the record"
)


@dataclass(frozen=True, slots=True)
class Item:
    """One value of one ledger event: the ODM item it fills and its text."""

    name: str
    value: str
    data_type: str


@dataclass(frozen=True, slots=True)
class Form:
    """A subject's ledger event as one ODM form."""

    position: int
    event: Recorded
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Sign:
    """A signature of a form: who, where, what it means, when, and the ledger position of
    its ``RecordSigned`` event (the signature's ``ID``)."""

    position: int
    signer_id: str
    site: str
    meaning: str
    signed_at: datetime


@dataclass
class Collected:
    """What the document needs from the entries, gathered in one pass."""

    forms: dict[str, list[Form]] = field(default_factory=dict)  # subject -> forms
    item_types: dict[str, dict[str, str]] = field(default_factory=dict)  # form -> item -> type
    users: dict[str, str] = field(default_factory=dict)  # user id -> printed name
    sites: set[str] = field(default_factory=set)
    signatures: dict[str, Sign] = field(default_factory=dict)  # signed event id -> signature
    signed_versions: dict[tuple[str, int], Sign] = field(default_factory=dict)  # scheme v1


def study_oid(study: StudyDefinition) -> str:
    return f"ST.{study.study_id}"


def odm_document(
    entries: Sequence[tuple[int, Recorded]],
    created: datetime,
    as_of: datetime | None = None,
    *,
    study: StudyDefinition,
) -> bytes:
    """The ODM 1.3.2 XML of ``entries`` (ledger order; the ledger of ``study``, whose
    definition names the document's study), made at ``created``; ``as_of``: the time the
    entries were read up to (the last entry's when not given)."""
    collected = collect(entries)
    last = max((e.recordedtime for _, e in entries), default=created)
    root = ET.Element(
        "ODM",
        {
            "xmlns": ODM_NS,
            "FileType": "Transactional",
            "Granularity": "All",
            "FileOID": f"TL.ODM.{entries[-1][0] if entries else 0}",
            "CreationDateTime": _timestamp(created),
            "AsOfDateTime": _timestamp(as_of or last),
            "ODMVersion": "1.3.2",
            "Originator": "Trial Ledger",
            "SourceSystem": "Trial Ledger",
            "Description": f"Trial Ledger, {study.study_id}, ledger positions 1.."
            f"{entries[-1][0] if entries else 0}",
        },
    )
    root.append(_study(collected, study))
    root.append(_admin_data(collected, created, study_oid(study)))
    root.append(_clinical_data(collected, study_oid(study)))
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def collect(entries: Iterable[tuple[int, Recorded]]) -> Collected:
    """Forms per subject, item types per form, users, sites and signatures."""
    collected = Collected()
    for position, event in entries:
        actor = event.data.get("actor") or {}
        user, site = actor.get("user_id") or UNKNOWN, actor.get("site") or UNKNOWN
        collected.users.setdefault(user, actor.get("printed_name") or user)
        collected.sites.add(site)
        if event.type in RECORD_SIGNED:
            _collect_signature(collected, position, event.data, site)
        if event.subject is None or event.type == AccessDeniedV1.event_type:
            continue  # no subject's clinical data: an account's event, a refused command
        items = items_of(event.data)
        types = collected.item_types.setdefault(event.type, {})
        for item in items:
            types[item.name] = _wider(types.get(item.name), item.data_type)
        collected.forms.setdefault(event.subject, []).append(Form(position, event, items))
    return collected


def _collect_signature(
    collected: Collected, position: int, data: dict[str, Any], site: str
) -> None:
    signer = str(data["signer_id"])
    collected.users.setdefault(signer, str(data["printed_name"]))
    sign = Sign(position, signer, site, str(data["meaning"]), _aware(data["signed_at"]))
    if data.get("signed_event_id"):
        collected.signatures[str(data["signed_event_id"])] = sign
    else:  # scheme v1 names the record and version it signs
        collected.signed_versions[(str(data["signed_record_id"]), int(data["signed_version"]))] = (
            sign
        )


def items_of(data: dict[str, Any]) -> tuple[Item, ...]:
    """The event's own fields (not the envelope's) as items: text, integer, boolean, or
    JSON text for a list or an object (observations, criteria, lots, results)."""
    return tuple(
        _item(name, value)
        for name, value in sorted(data.items())
        if name not in COMMON_FIELDS and value is not None
    )


def _item(name: str, value: Any) -> Item:
    if isinstance(value, bool):
        return Item(name, "true" if value else "false", "boolean")
    if isinstance(value, int):
        return Item(name, str(value), "integer")
    if isinstance(value, str):
        return Item(name, value, "text")
    return Item(name, json.dumps(value, sort_keys=True, ensure_ascii=False), "text")


def _wider(known: str | None, seen: str) -> str:
    """One ODM data type for an item seen with values of several kinds: text holds all."""
    return seen if known in (None, seen) else "text"


# --- Study: the metadata of every form seen ---------------------------------------------


def _study(collected: Collected, definition: StudyDefinition) -> ET.Element:
    study = ET.Element("Study", OID=study_oid(definition))
    variables = ET.SubElement(study, "GlobalVariables")
    ET.SubElement(variables, "StudyName").text = definition.study_id
    ET.SubElement(variables, "StudyDescription").text = definition.title
    ET.SubElement(variables, "ProtocolName").text = definition.study_id
    version = ET.SubElement(study, "MetaDataVersion", OID=MDV_OID, Name="Trial Ledger events")
    forms = sorted(collected.item_types)
    protocol = ET.SubElement(version, "Protocol")
    ET.SubElement(protocol, "StudyEventRef", StudyEventOID=STUDY_EVENT_OID, OrderNumber="1",
                  Mandatory="No")  # fmt: skip
    event = ET.SubElement(version, "StudyEventDef", OID=STUDY_EVENT_OID, Name="Ledger",
                          Repeating="Yes", Type="Unscheduled")  # fmt: skip
    for order, form in enumerate(forms, start=1):
        ET.SubElement(event, "FormRef", FormOID=form_oid(form), OrderNumber=str(order),
                      Mandatory="No")  # fmt: skip
    for form in forms:
        form_def = ET.SubElement(version, "FormDef", OID=form_oid(form), Name=form,
                                 Repeating="Yes")  # fmt: skip
        ET.SubElement(form_def, "ItemGroupRef", ItemGroupOID=group_oid(form), Mandatory="Yes")
    for form in forms:
        group = ET.SubElement(version, "ItemGroupDef", OID=group_oid(form), Name=form,
                              Repeating="No")  # fmt: skip
        for name in sorted(collected.item_types[form]):
            ET.SubElement(group, "ItemRef", ItemOID=item_oid(form, name), Mandatory="No")
    for form in forms:
        for name, data_type in sorted(collected.item_types[form].items()):
            version.append(_item_def(form, name, data_type))
    for name, (data_type, values) in sorted(CODE_LISTS.items()):
        version.append(_code_list(name, data_type, values))
    return study


def _item_def(form: str, name: str, data_type: str) -> ET.Element:
    coded = CODE_LISTS.get(name)
    definition = ET.Element("ItemDef", OID=item_oid(form, name), Name=name,
                            DataType=coded[0] if coded else data_type)  # fmt: skip
    _described(definition, f"{form}: {name}")
    if coded:
        ET.SubElement(definition, "CodeListRef", CodeListOID=code_list_oid(name))
    return definition


def _code_list(name: str, data_type: str, values: tuple[str, ...]) -> ET.Element:
    code_list = ET.Element("CodeList", OID=code_list_oid(name), Name=name, DataType=data_type)
    for value in values:
        item = ET.SubElement(code_list, "CodeListItem", CodedValue=value)
        decode = ET.SubElement(item, "Decode")
        ET.SubElement(decode, "TranslatedText", {XML_LANG: "en"}).text = value
    return code_list


def _described(element: ET.Element, text: str) -> None:
    description = ET.SubElement(element, "Description")
    ET.SubElement(description, "TranslatedText", {XML_LANG: "en"}).text = text


# --- AdminData: who and where -----------------------------------------------------------


def _admin_data(collected: Collected, created: datetime, oid: str) -> ET.Element:
    admin = ET.Element("AdminData", StudyOID=oid)
    for user_id, name in sorted(collected.users.items()):
        user = ET.SubElement(admin, "User", OID=user_oid(user_id))
        ET.SubElement(user, "LoginName").text = user_id
        ET.SubElement(user, "FullName").text = name
    for site in sorted(collected.sites):
        location = ET.SubElement(admin, "Location", OID=location_oid(site), Name=site,
                                 LocationType="Site")  # fmt: skip
        effective = created.date().isoformat()
        ET.SubElement(location, "MetaDataVersionRef", StudyOID=oid,
                      MetaDataVersionOID=MDV_OID, EffectiveDate=effective)  # fmt: skip
    for meaning in Meaning:
        definition = ET.SubElement(admin, "SignatureDef", OID=signature_oid(meaning.value),
                                   Methodology="Electronic")  # fmt: skip
        ET.SubElement(definition, "Meaning").text = meaning.value
        ET.SubElement(definition, "LegalReason").text = LEGAL_REASON
    return admin


# --- ClinicalData: every subject's forms, values, audit records and signatures ----------


def _clinical_data(collected: Collected, oid: str) -> ET.Element:
    clinical = ET.Element("ClinicalData", StudyOID=oid, MetaDataVersionOID=MDV_OID)
    for subject, forms in sorted(collected.forms.items()):
        subject_data = ET.SubElement(clinical, "SubjectData", SubjectKey=subject,
                                     TransactionType="Insert")  # fmt: skip
        site = _site_of(forms)
        if site is not None:
            ET.SubElement(subject_data, "SiteRef", LocationOID=location_oid(site))
        study_event = ET.SubElement(
            subject_data, "StudyEventData", StudyEventOID=STUDY_EVENT_OID, StudyEventRepeatKey="1"
        )
        for form in forms:
            study_event.append(_form_data(form, _signature_of(collected, form.event)))
    return clinical


def _site_of(forms: list[Form]) -> str | None:
    """The subject's site, as registered (``SubjectRegistered``'s ``site_id``)."""
    for form in forms:
        site = form.event.data.get("site_id")
        if isinstance(site, str):
            return site
    return None


def _signature_of(collected: Collected, event: Recorded) -> Sign | None:
    sign = collected.signatures.get(str(event.id))
    if sign is None and event.data.get("version") is not None:
        key = (str(event.data.get("record_id")), int(event.data["version"]))
        sign = collected.signed_versions.get(key)
    return sign


def _form_data(form: Form, sign: Sign | None) -> ET.Element:
    event = form.event
    element = ET.Element("FormData", FormOID=form_oid(event.type),
                         FormRepeatKey=str(form.position), TransactionType="Insert")  # fmt: skip
    if sign is not None:
        signature = ET.SubElement(element, "Signature", ID=f"SIG.{sign.position}")
        ET.SubElement(signature, "UserRef", UserOID=user_oid(sign.signer_id))
        ET.SubElement(signature, "LocationRef", LocationOID=location_oid(sign.site))
        ET.SubElement(signature, "SignatureRef", SignatureOID=signature_oid(sign.meaning))
        ET.SubElement(signature, "DateTimeStamp").text = _timestamp(sign.signed_at)
    group = ET.SubElement(element, "ItemGroupData", ItemGroupOID=group_oid(event.type),
                          TransactionType="Insert")  # fmt: skip
    for item in form.items:
        item_data = ET.SubElement(group, "ItemData", ItemOID=item_oid(event.type, item.name),
                                  Value=item.value, TransactionType="Insert")  # fmt: skip
        item_data.append(audit_record(form.position, event))
    return element


def audit_record(position: int, event: Recorded) -> ET.Element:
    """Who, where, when (server UTC), why, and the ledger entry it comes from."""
    actor = event.data.get("actor") or {}
    record = ET.Element("AuditRecord")
    ET.SubElement(record, "UserRef", UserOID=user_oid(actor.get("user_id") or UNKNOWN))
    ET.SubElement(record, "LocationRef", LocationOID=location_oid(actor.get("site") or UNKNOWN))
    ET.SubElement(record, "DateTimeStamp").text = _timestamp(event.recordedtime)
    reason = event.data.get("reason")
    if reason:
        ET.SubElement(record, "ReasonForChange").text = str(reason)
    ET.SubElement(record, "SourceID").text = source_id(position, event)
    return record


def source_id(position: int, event: Recorded) -> str:
    return f"ledger position {position}, event {event.id}"


def form_oid(event_type: str) -> str:
    return f"F.{event_type}"


def group_oid(event_type: str) -> str:
    return f"IG.{event_type}"


def item_oid(event_type: str, name: str) -> str:
    return f"IT.{event_type}.{name}"


def code_list_oid(name: str) -> str:
    return f"CL.{name}"


def user_oid(user_id: str) -> str:
    return f"USR.{user_id}"


def location_oid(site: str) -> str:
    return f"LOC.{site}"


def signature_oid(meaning: str) -> str:
    return f"SD.{meaning}"


def _aware(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _timestamp(moment: datetime) -> str:
    """ODM's datetime, in UTC with its offset written out."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
