"""Each stored event maps to its published contract, field by field."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from uuid import UUID

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import event_id, to_contract
from services.enrollment.rules import Observation
from shared.contracts import enrollment as contracts
from shared.envelope import CloudEvent
from tests.support import NOW, SCREENING_DAY, command, consent, screening


def published() -> list[CloudEvent]:
    app = EnrollmentApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.register_subject("S-001", "ZJU-1", command())
    app.sign_consent("S-001", consent(), command())
    app.record_screening("S-001", screening(), command())
    fixed = Observation(Decimal(1), SCREENING_DAY, "mg/dL")
    app.correct_value("S-001", "screening.creatinine", fixed, "re-issued", command())
    app.decide_eligibility("S-001", command())
    app.enrol("S-001", 4, command())
    app.withdraw("S-001", "relocated", command())
    notifications = app.notification_log.select(1, 10)
    return [
        CloudEvent.wrap(to_contract(app.mapper.to_domain_event(n)), n.id) for n in notifications
    ]


def test_every_event_is_published_under_its_versioned_type() -> None:
    assert [e.type for e in published()] == [
        "SubjectRegistered.v1",
        "ConsentSigned.v1",
        "ScreeningResultRecorded.v1",
        "ValueCorrected.v1",
        "EligibilityConfirmed.v1",
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
        contract = contracts.ENROLLMENT_CONTRACTS[event.type].model_validate(event.data)
        assert contract.subject_id == "S-001"
        assert contract.actor.printed_name == "Dr Lin Wei"
        assert contract.source.service == "enrollment"


def test_correction_publishes_old_and_new_value_and_reason() -> None:
    correction = published()[3].data
    assert correction["field"] == "screening.creatinine"
    assert correction["old_value"]["value"] == "0.8"
    assert correction["new_value"] == {
        "value": "1",
        "unit": "mg/dL",
        "upper_limit_normal": None,
        "observed_on": "2026-11-05",
    }
    assert correction["reason"] == "re-issued"


def test_enrolment_publishes_dose_level_and_cells_per_kg() -> None:
    enrolled = published()[5].data
    assert (enrolled["dose_level"], enrolled["dose_cells_per_kg"]) == (4, "4000000")


def test_quantities_travel_as_exact_decimal_strings() -> None:
    screened = published()[2].data
    platelets = next(o for o in screened["observations"] if o["criterion"] == "platelets")
    assert platelets == {
        "criterion": "platelets",
        "kind": "quantity",
        "value": "180",
        "unit": "10^9/L",
        "upper_limit_normal": None,
        "observed_on": "2026-11-05",
    }
