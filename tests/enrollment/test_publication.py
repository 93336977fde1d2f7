"""Each stored event maps to its published contract, field by field."""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import to_contract
from services.enrollment.rules import Observation
from shared.contracts import enrollment as contracts
from shared.contracts.security import AccessDeniedV1, RecordSignedV2
from shared.kernel.envelope import CloudEvent, contract_registry
from shared.kernel.provenance import Meaning
from shared.kernel.publication import event_id
from shared.kernel.signatures import verify_published
from tests.support import (
    MEMORY,
    NOW,
    RECORD_KEY,
    SCREENING_DAY,
    SIGNER,
    command,
    consent,
    screening,
    signing,
)


def published(subject_id: str = "S-001") -> list[CloudEvent]:
    app = EnrollmentApplication(signer=SIGNER, env=MEMORY)
    app.register_subject(subject_id, "ZJU-1", command())
    app.sign_consent(subject_id, consent(), command(), signing(Meaning.RESPONSIBILITY))
    app.record_screening(subject_id, screening(), command())
    fixed = Observation(Decimal(1), SCREENING_DAY, "mg/dL")
    app.correct_value(subject_id, "screening.creatinine", fixed, "re-issued", command())
    app.decide_eligibility(subject_id, command(), signing(Meaning.APPROVAL))
    app.enrol(subject_id, 4, command(), allowed_level=4)
    app.withdraw(subject_id, "relocated", command())
    notifications = app.notification_log.select(1, 10)
    return [
        CloudEvent.wrap(to_contract(app.mapper.to_domain_event(n)), n.id) for n in notifications
    ]


def as_published(events: list[CloudEvent]) -> list[dict[str, Any]]:
    """The events as a verifier reads them off the topic: parsed from their published bytes."""
    return [json.loads(event.to_kafka_value()) for event in events]


CONTRACTS = {**contracts.ENROLLMENT_CONTRACTS, **contract_registry(RecordSignedV2, AccessDeniedV1)}


def test_every_event_is_published_under_its_versioned_type() -> None:
    assert [e.type for e in published()] == [
        "SubjectRegistered.v1",
        "ConsentSigned.v1",
        "RecordSigned.v2",
        "ScreeningResultRecorded.v1",
        "ValueCorrected.v1",
        "EligibilityConfirmed.v1",
        "RecordSigned.v2",
        "SubjectEnrolled.v1",
        "SubjectWithdrawn.v1",
    ]


def test_envelope_carries_the_cloudevents_attributes() -> None:
    first = published()[0]
    assert first.specversion == "1.0"
    assert first.source == "/trial-ledger/enrollment"
    assert first.subject == "S-001"
    assert first.sequence == "1"
    assert first.time == NOW
    assert (
        first.recordedtime.tzinfo is not None
        and first.recordedtime.utcoffset() == UTC.utcoffset(None)
    )
    assert first.correlationid == "corr-1"
    assert str(first.id) == first.data["event_id"]
    assert first.id == event_id(UUID(first.data["record_id"]), 1)


def test_event_id_is_stable_per_record_and_version() -> None:
    first, second = published(), published()
    assert [e.id for e in first] == [e.id for e in second]
    assert len({e.id for e in first}) == len(first)


def test_every_payload_validates_against_its_contract() -> None:
    for event in published():
        contract = CONTRACTS[event.type].model_validate(event.data)
        assert contract.subject_id == "S-001"
        assert contract.actor.printed_name == "Dr Lin Wei"
        assert contract.source.service == "enrollment"


def test_correction_publishes_old_and_new_value_and_reason() -> None:
    correction = published()[4].data
    assert correction["field"] == "screening.creatinine"
    assert correction["old_value"]["value"] == "0.8"
    assert correction["new_value"] == {
        "value": "1",
        "unit": "mg/dL",
        "upper_limit_normal": None,
        "observed_on": "2026-11-05",
    }
    assert correction["reason"] == "re-issued"


def test_enrollment_publishes_dose_level_and_cells_per_kg() -> None:
    enrolled = published()[7].data
    assert (enrolled["dose_level"], enrolled["dose_cells_per_kg"]) == (4, "4000000")


def test_quantities_travel_as_exact_decimal_strings() -> None:
    screened = published()[3].data
    platelets = next(o for o in screened["observations"] if o["criterion"] == "platelets")
    assert platelets == {
        "criterion": "platelets",
        "kind": "quantity",
        "value": "180",
        "unit": "10^9/L",
        "upper_limit_normal": None,
        "observed_on": "2026-11-05",
    }


def test_signature_names_signer_meaning_and_time_and_verifies() -> None:
    events = as_published(published())
    consent_signature = events[2]["data"]
    assert (consent_signature["signer_id"], consent_signature["meaning"]) == (
        "u-inv-1",
        "responsibility",
    )
    assert consent_signature["printed_name"] == "Dr Lin Wei"
    assert consent_signature["signed_version"] == 2
    assert consent_signature["signed_event_id"] == events[1]["id"]
    assert consent_signature["scheme"] == "trial-ledger/record-signature/v2"
    assert verify_published(events[1], events[2], RECORD_KEY.public_key())
    assert verify_published(events[5], events[6], RECORD_KEY.public_key())


def test_signature_copied_onto_another_record_fails_verification() -> None:
    mine, theirs = as_published(published("S-001")), as_published(published("S-002"))
    assert not verify_published(theirs[1], mine[2], RECORD_KEY.public_key())


def test_signature_moved_to_another_version_of_the_record_fails_verification() -> None:
    events = as_published(published())
    assert not verify_published(events[5], events[2], RECORD_KEY.public_key())


def test_altered_signed_record_fails_verification() -> None:
    events = as_published(published())
    altered = {**events[1], "data": {**events[1]["data"], "form_version": "ICF v9"}}
    assert not verify_published(altered, events[2], RECORD_KEY.public_key())


def test_signature_by_another_key_fails_verification() -> None:
    events = as_published(published())
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_published(events[1], events[2], other)
