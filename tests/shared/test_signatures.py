"""Record signatures: the checked-in scheme v1 vector still verifies, and a record signed
under scheme v1 and stored then still loads and publishes exactly as it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import StoredEvent

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import to_contract
from shared.envelope import CloudEvent
from shared.signatures import verify_published

ROOT = Path(__file__).resolve().parents[2]
V1_VECTOR = ROOT / "docs/examples/record-signature-v1.json"
STORED_V1 = Path(__file__).with_name("fixtures") / "stored-signature-v1.json"


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def public_key(vector: dict[str, Any]) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["test_key"]["public_key_hex"]))


def test_the_scheme_v1_vector_verifies() -> None:
    vector = load(V1_VECTOR)
    signed, signature = vector["signed_event"]["data"], vector["signature_event"]["data"]
    assert verify_published(signed, signature, public_key(vector))


def test_a_record_signed_under_scheme_v1_loads_and_publishes_as_it_did() -> None:
    fixture = load(STORED_V1)
    app = EnrollmentApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.recorder.insert_events(
        [
            StoredEvent(UUID(e["originator_id"]), e["originator_version"], e["topic"],
                        e["state"].encode())
            for e in fixture["stored"]
        ]
    )  # fmt: skip
    record = app.repository.get(UUID(fixture["stored"][0]["originator_id"]))
    assert [s.meaning for s in record.signatures] == ["responsibility"]
    republished = [
        CloudEvent.wrap(to_contract(app.mapper.to_domain_event(n)), n.id).to_kafka_value()
        for n in app.notification_log.select(1, 10)
    ]
    assert [text.decode() for text in republished] == fixture["published"]
