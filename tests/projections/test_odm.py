"""The ODM 1.3.2 export from ledger entries (no I/O): a small trial's events as the real
enrollment, infusion and adverse-events code publishes them (tests/projections/trial.py),
and a few made by hand where no service publishes them any more (a scheme v1 signature),
or to show one case alone (an account's event, a refused command), validated against
CDISC's ODM 1.3.2 schema and read back with odmlib."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.projections.odm import odm_document
from services.projections.recorded import COMMON_FIELDS, RecordedEvent
from shared.kernel.envelope import CloudEvent
from shared.study import study_definition
from tests.cdisc import odmlib_root, schema_errors
from tests.projections.trial import ledgered, trial_events
from tests.support import NOW, identity_event

STUDY = study_definition()  # the first study's
CREATED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
Entries = list[tuple[int, RecordedEvent]]


def hand_made(type_: str, subject: str | None, **data: Any) -> CloudEvent:
    actor = {"user_id": "u-sm-1", "printed_name": "Dr Sun Mei", "role": "investigator",
             "site": "ZJU-2"}  # fmt: skip
    envelope = {"record_id": str(uuid.uuid4()), "version": 1, "actor": actor, "reason": None}
    return CloudEvent(
        id=uuid.uuid4(), source="/trial-ledger/tests", type=type_, subject=subject,
        time=NOW, recordedtime=NOW + timedelta(seconds=1), sequence="1", correlationid="c",
        data={**envelope, **data},
    )  # fmt: skip


@pytest.fixture(scope="module")
def entries() -> Entries:
    return ledgered(trial_events())


@pytest.fixture(scope="module")
def odm(entries: Entries) -> Any:
    return odmlib_root(odm_document(entries, CREATED, study=STUDY))


def text(element: Any) -> str:
    """The text of an element odmlib reads as an object (``DateTimeStamp``, ``SourceID``)."""
    return str(element)


def forms(odm: Any, subject: str) -> list[Any]:
    (subject_data,) = [s for s in odm.ClinicalData[0].SubjectData if s.SubjectKey == subject]
    return list(subject_data.StudyEventData[0].FormData)


def test_the_odm_of_the_enrollment_events_has_no_error_against_the_odm_1_3_2_schema(
    entries: Entries,
) -> None:
    assert schema_errors(odm_document(entries, CREATED, study=STUDY)) == []


def test_every_value_of_every_subject_event_is_read_back_by_odmlib(
    entries: Entries, odm: Any
) -> None:
    read = {
        (int(form.FormRepeatKey), item.ItemOID): item.Value
        for subject in ("S-001", "S-002")
        for form in forms(odm, subject)
        for item in form.ItemGroupData[0].ItemData
    }
    own = {
        (position, f"IT.{event.type}.{name}")
        for position, event in entries
        for name, value in event.data.items()
        if name not in COMMON_FIELDS and value is not None
    }
    assert set(read) == own
    consent = next(p for p, e in entries if e.type == "ConsentSigned.v1")
    assert read[(consent, "IT.ConsentSigned.v1.form_version")] == "ICF v2.1"


def test_each_value_has_its_audit_record_who_where_when_and_ledger_source(
    entries: Entries, odm: Any
) -> None:
    position, event = next((p, e) for p, e in entries if e.type == "SubjectEnrolled.v1")
    (form,) = [f for f in forms(odm, "S-001") if int(f.FormRepeatKey) == position]
    audit = form.ItemGroupData[0].ItemData[0].AuditRecord
    assert audit.UserRef.UserOID == f"USR.{event.data['actor']['user_id']}"
    assert audit.LocationRef.LocationOID == "LOC.ZJU-1"
    assert datetime.fromisoformat(text(audit.DateTimeStamp)) == event.recordedtime
    assert text(audit.DateTimeStamp).endswith("Z")
    assert text(audit.SourceID) == f"ledger position {position}, event {event.id}"


def test_a_correction_gives_its_reason_for_change(entries: Entries, odm: Any) -> None:
    corrections = [f for f in forms(odm, "S-001") if f.FormOID == "F.ValueCorrected.v1"]
    reasons = [
        text(f.ItemGroupData[0].ItemData[0].AuditRecord.ReasonForChange) for f in corrections
    ]
    assert reasons == ["found in notes", "wrong patient"]


def test_a_signed_event_carries_its_signature_defined_by_its_meaning_and_legal_reason(
    odm: Any,
) -> None:
    signed = {f.FormOID: f.Signature for f in forms(odm, "S-002") if f.Signature is not None}
    assert set(signed) == {"F.ConsentSigned.v1", "F.EligibilityConfirmed.v1"}
    assert signed["F.ConsentSigned.v1"].SignatureRef.SignatureOID == "SD.responsibility"
    assert signed["F.EligibilityConfirmed.v1"].UserRef.UserOID == "USR.u-inv-1"
    definitions = {d.OID: d for d in odm.AdminData[0].SignatureDef}
    assert text(definitions["SD.approval"].Meaning) == "approval"
    assert "21 CFR Part 11" in text(definitions["SD.approval"].LegalReason)


def test_the_infusion_and_the_grade_carry_the_signatures_their_services_made(odm: Any) -> None:
    signed = {f.FormOID: f.Signature for f in forms(odm, "S-001") if f.Signature is not None}
    assert {"F.CarTInfused.v1", "F.AdverseEventGraded.v1", "F.DltAdjudicated.v1"} <= set(signed)
    assert signed["F.AdverseEventGraded.v1"].SignatureRef.SignatureOID == "SD.authorship"
    assert signed["F.DltAdjudicated.v1"].SignatureRef.SignatureOID == "SD.approval"


def test_the_subject_is_at_the_site_it_was_registered_at(odm: Any) -> None:
    subject = odm.ClinicalData[0].SubjectData[0]
    assert subject.SiteRef.LocationOID == "LOC.ZJU-1"
    assert [loc.OID for loc in odm.AdminData[0].Location] == ["LOC.ZJU-1"]


def test_a_scheme_v1_signature_signs_the_form_of_its_record_and_version() -> None:
    graded = hand_made("AdverseEventGraded.v1", "S-003", scale="ASTCT-CRS", grade=2)
    signature = hand_made(
        "RecordSigned.v1", "S-003", signed_record_id=graded.data["record_id"], signed_version=1,
        signer_id="u-sm-1", printed_name="Dr Sun Mei", meaning="review",
        signed_at="2026-11-20T09:31:00+00:00",
    )  # fmt: skip
    xml = odm_document(ledgered([graded, signature]), CREATED, study=STUDY)
    (form, _) = forms(odmlib_root(xml), "S-003")
    assert form.Signature.SignatureRef.SignatureOID == "SD.review"
    assert text(form.Signature.DateTimeStamp) == "2026-11-20T09:31:00Z"
    assert form.Signature.ID == "SIG.2"  # the signature's own ledger position
    assert schema_errors(xml) == []


def test_a_coded_item_names_its_code_list_of_the_allowed_values() -> None:
    graded = hand_made("AdverseEventGraded.v1", "S-003", scale="ASTCT-ICANS", grade=3)
    odm = odmlib_root(odm_document(ledgered([graded]), CREATED, study=STUDY))
    version = odm.Study[0].MetaDataVersion[0]
    scale = next(i for i in version.ItemDef if i.OID == "IT.AdverseEventGraded.v1.scale")
    assert scale.CodeListRef.CodeListOID == "CL.scale"
    codes = next(c for c in version.CodeList if c.OID == "CL.scale")
    assert [i.CodedValue for i in codes.CodeListItem] == ["CTCAE", "ASTCT-CRS", "ASTCT-ICANS"]


def test_an_accounts_event_is_no_clinical_data_but_its_actor_is_a_user() -> None:
    created = identity_event("UserCreated.v1", NOW, user_id="aud.kim",
                             actor={"user_id": "admin", "printed_name": "Ada Admin",
                                    "role": "administrator", "site": "HQ"})  # fmt: skip
    xml = odm_document(ledgered([created]), CREATED, study=STUDY)
    odm = odmlib_root(xml)
    assert odm.ClinicalData[0].SubjectData == []
    assert [(u.OID, text(u.FullName)) for u in odm.AdminData[0].User] == [
        ("USR.admin", "Ada Admin")
    ]
    assert schema_errors(xml) == []


def test_a_refused_command_is_no_clinical_data() -> None:
    denied = hand_made("AccessDenied.v1", "S-003", command="infuse",
                       reason_code="role_not_permitted", roles=["monitor"])  # fmt: skip
    odm = odmlib_root(odm_document(ledgered([denied]), CREATED, study=STUDY))
    assert odm.ClinicalData[0].SubjectData == []


def test_an_empty_ledger_is_still_a_valid_odm_file() -> None:
    xml = odm_document([], CREATED, study=STUDY)
    assert schema_errors(xml) == []
    assert odmlib_root(xml).FileOID == "TL.ODM.0"


def test_a_file_names_the_last_position_it_holds_and_when_it_was_read_up_to(
    entries: Entries,
) -> None:
    as_of = datetime(2026, 11, 30, tzinfo=UTC)
    odm = odmlib_root(odm_document(entries[:5], CREATED, as_of, study=STUDY))
    assert (odm.FileOID, odm.AsOfDateTime, odm.ODMVersion) == (
        "TL.ODM.5", "2026-11-30T00:00:00Z", "1.3.2"
    )  # fmt: skip


def test_a_second_study_s_file_names_that_study_throughout(entries: Entries) -> None:
    second = study_definition("SYN-CART-2")
    xml = odm_document(entries[:5], CREATED, study=second)
    assert schema_errors(xml) == []
    odm = odmlib_root(xml)
    assert {odm.Study[0].OID, odm.AdminData[0].StudyOID, odm.ClinicalData[0].StudyOID} == {
        "ST.SYN-CART-2"
    }
    variables = odm.Study[0].GlobalVariables
    assert (str(variables.StudyName), str(variables.StudyDescription)) == (
        "SYN-CART-2", second.title,
    )  # fmt: skip
