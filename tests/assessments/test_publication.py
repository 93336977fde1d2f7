"""What the assessments relay publishes: each stored assessment under its versioned type,
keyed by subject, valid against its contract, the remission signed over what it names."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from services.assessments import laboratory as lab
from services.assessments.application import AssessmentsApplication
from services.assessments.domain import REMISSION_SIGNATURE, Progression
from services.assessments.publication import PUBLICATION
from services.assessments.rules import Response
from shared.clinical import Infused
from shared.contracts.assessments import ASSESSMENT_CONTRACTS
from shared.contracts.security import RecordSignedV2
from shared.kernel.envelope import CloudEvent, contract_registry
from shared.kernel.signatures import verify_published
from tests.assessments.test_record import ALIVE, INFUSED_AT, activity
from tests.assessments.test_record import I as Item
from tests.support import MEMORY, RECORD_KEY, SIGNER, as_published, command, signing

CONTRACTS = {**ASSESSMENT_CONTRACTS, **contract_registry(RecordSignedV2)}


def published(subject_id: str = "S-001") -> list[CloudEvent]:
    app = AssessmentsApplication(signer=SIGNER, env=MEMORY)
    infused = Infused(INFUSED_AT, 2)

    def visit(days: int, *items: Item, pga: str = "0") -> str:
        at = INFUSED_AT + timedelta(days=days)
        app.assess_activity(
            subject_id, infused, ALIVE, f"day {days}", activity(*items, pga=pga), at, command()
        )
        return str(as_published(app, PUBLICATION)[-1].id)  # as remission names a visit

    visit(-3, Item.ARTHRITIS, Item.RASH, pga="1.5")
    visit(30, Item.RASH, pga="0.8")
    month3 = visit(90, Item.LOW_COMPLEMENT)
    dsdna = lab.autoantibody_result(
        lab.Analyte.ANTI_DSDNA, Decimal(200), "IU/mL", lab.ReferenceRange(None, Decimal(100))
    )
    at = INFUSED_AT + timedelta(days=13)
    app.measure_autoantibodies(subject_id, infused, ALIVE, (dsdna,), at, command())
    sample = lab.kinetics_sample(
        lab.Sample.PERIPHERAL_BLOOD,
        lab.Method.QPCR,
        lab.Target.CD19,
        Decimal("20"),
        "copies/µg gDNA",
        Decimal("50"),
    )
    app.measure_kinetics(subject_id, infused, ALIVE, sample, at, command())
    app.assess_remission(
        subject_id, ALIVE, month3, Response.COMPLETE, command(), signing(REMISSION_SIGNATURE)
    )
    app.report_progression(
        subject_id,
        infused,
        ALIVE,
        Progression.FLARE,
        "new rash",
        INFUSED_AT + timedelta(days=95),
        command(),
    )
    return as_published(app, PUBLICATION)


def test_every_assessment_is_published_under_its_versioned_type_keyed_by_subject() -> None:
    events = published()
    assert [e.type for e in events] == [
        "FollowUpStarted.v1",
        "DiseaseActivityAssessed.v1",
        "DiseaseActivityAssessed.v1",
        "DiseaseActivityAssessed.v1",
        "AutoantibodyMeasured.v1",
        "CarTKineticsMeasured.v1",
        "RemissionAssessed.v1",
        "RecordSigned.v2",
        "ProgressionReported.v1",
    ]
    assert {(e.source, e.subject) for e in events} == {("/trial-ledger/assessments", "S-001")}


def test_every_payload_validates_against_its_contract() -> None:
    for event in published():
        contract = CONTRACTS[event.type].model_validate(event.data)
        assert contract.subject_id == "S-001"
        assert contract.source.service == "assessments"


def test_assessments_carry_their_clinical_time_and_study_day() -> None:
    events = published()
    baseline, kinetics = events[1], events[5]
    assert baseline.time == INFUSED_AT - timedelta(days=3)
    assert baseline.data["study_day"] == -3
    assert (kinetics.data["unit"], kinetics.data["below_lloq"], kinetics.data["study_day"]) == (
        "copies/ug gDNA",
        True,
        14,
    )


def test_the_remission_names_its_visits_by_published_event_id() -> None:
    events = published()
    remission = events[6].data
    assert remission["visit_event_id"] == str(events[3].id)
    assert remission["previous_event_id"] == str(events[2].id)
    assert remission["baseline_event_id"] == str(events[1].id)


def test_the_remission_signature_verifies_and_does_not_fit_another_subject() -> None:
    mine = [json.loads(e.to_kafka_value()) for e in published("S-001")]
    theirs = [json.loads(e.to_kafka_value()) for e in published("S-002")]
    assert verify_published(mine[6], mine[7], RECORD_KEY.public_key())
    assert mine[7]["data"]["meaning"] == REMISSION_SIGNATURE.value
    assert not verify_published(theirs[6], mine[7], RECORD_KEY.public_key())


def test_event_ids_are_stable_and_distinct() -> None:
    first, second = published(), published()
    assert [e.id for e in first] == [e.id for e in second]
    assert len({e.id for e in first}) == len(first)
