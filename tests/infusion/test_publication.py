"""What the infusion relay publishes: each stored step of a treatment under its
versioned type, keyed by subject, valid against its contract, the infusion signed."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from services.infusion.application import InfusionApplication
from services.infusion.domain import INFUSION_SIGNATURE, Enrollment, Leukapheresis
from services.infusion.publication import PUBLICATION
from shared.clinical import FIRST_COHORT
from shared.contracts.infusion import INFUSION_CONTRACTS, RecordSignedV2
from shared.kernel.envelope import CloudEvent, contract_registry
from shared.kernel.signatures import verify_published
from tests.infusion.test_domain import infusion, regimen, release
from tests.support import MEMORY, RECORD_KEY, SIGNER, as_published, command, signing

ENROLLED = Enrollment("enrolled", 1)


def published(subject_id: str = "S-001") -> list[CloudEvent]:
    app = InfusionApplication(signer=SIGNER, env=MEMORY)
    apheresis = Leukapheresis(date(2026, 11, 1), Decimal(180))
    app.record_leukapheresis(subject_id, ENROLLED, apheresis, command())
    app.release_product(subject_id, ENROLLED, release(), command())
    app.record_lymphodepletion(subject_id, ENROLLED, regimen(), command())
    dose = infusion(cells="70000000")  # 1.0 x10^6 cells/kg at 70 kg: level 1
    app.infuse(subject_id, ENROLLED, dose, command(), signing(INFUSION_SIGNATURE), FIRST_COHORT)
    return as_published(app, PUBLICATION)


def test_every_step_is_published_under_its_versioned_type_keyed_by_subject() -> None:
    events = published()
    assert [e.type for e in events] == [
        "LeukapheresisPerformed.v1",
        "ProductReleased.v1",
        "LymphodepletionAdministered.v1",
        "CarTInfused.v1",
        "RecordSigned.v2",
    ]
    assert {(e.source, e.subject) for e in events} == {("/trial-ledger/infusion", "S-001")}
    assert [e.sequence for e in events] == ["1", "2", "3", "4", "5"]


def test_every_payload_validates_against_its_contract() -> None:
    contracts = {**INFUSION_CONTRACTS, **contract_registry(RecordSignedV2)}
    for event in published():
        contract = contracts[event.type].model_validate(event.data)
        assert contract.subject_id == "S-001"
        assert contract.source.service == "infusion"


def test_steps_carry_their_clinical_time_and_the_infusion_its_dose() -> None:
    leukapheresis, released, depleted, infused, _ = published()
    assert leukapheresis.time.date() == date(2026, 11, 1)
    assert released.time.date() == date(2026, 11, 10)
    assert depleted.time.date() == date(2026, 11, 15)
    assert infused.time == infusion().started_at
    assert (infused.data["dose_level"], infused.data["cells_per_kg_millions"]) == (1, "1.000")
    assert infused.data["total_viable_car_positive_cells"] == "70000000"


def test_event_ids_are_stable_and_distinct() -> None:
    first, second = published(), published()
    assert [e.id for e in first] == [e.id for e in second]
    assert len({e.id for e in first}) == len(first)
    assert published("S-002")[0].id != first[0].id


def test_the_infusion_signature_verifies_and_does_not_fit_another_record() -> None:
    mine = [json.loads(e.to_kafka_value()) for e in published("S-001")]
    theirs = [json.loads(e.to_kafka_value()) for e in published("S-002")]
    assert verify_published(mine[3], mine[4], RECORD_KEY.public_key())
    assert mine[4]["data"]["meaning"] == INFUSION_SIGNATURE.value
    assert not verify_published(theirs[3], mine[4], RECORD_KEY.public_key())
