"""Record signatures: scheme v2 (RFC 8785 manifest of published values) signs and verifies,
fails when moved or altered, matches its checked-in test vector; scheme v1 records still
load, publish as they did and verify."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.persistence import StoredEvent

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import to_contract
from shared.contract_docs.discovery import contract_modules, defined_events
from shared.kernel.envelope import CloudEvent
from shared.kernel.keys import key_id
from shared.kernel.signatures import (
    MANIFEST_FIELDS,
    SCHEME,
    SIGNED_EVENT_ATTRIBUTES,
    RecordSigner,
    Signature,
    SignatureV1,
    manifest,
    manifest_bytes,
    published_time,
    verify_published,
)
from tests.support import MEMORY

ROOT = Path(__file__).resolve().parents[2]
V1_VECTOR = ROOT / "docs/examples/record-signature-v1.json"
V2_VECTOR = ROOT / "docs/examples/record-signature-v2.json"
STORED_V1 = Path(__file__).with_name("fixtures") / "stored-signature-v1.json"
Event = dict[str, Any]


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def private_key(vector: dict[str, Any]) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex(vector["test_key"]["private_key_hex"])
    )


def public_key(vector: dict[str, Any]) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["test_key"]["public_key_hex"]))


V2 = load(V2_VECTOR)
KEY = private_key(V2)
SIGNED: Event = V2["signed_event"]  # EligibilityConfirmed.v1, as published


def signature_event(signed: Event, key: Ed25519PrivateKey = KEY) -> Event:
    """A RecordSigned.v2 CloudEvent signing ``signed``, as the service would publish it."""
    signature = RecordSigner(key).sign(
        signed,
        signer_id="lin.wei",
        printed_name="林伟 Lin Wei",
        meaning="approval",
        signed_at=datetime(2026, 11, 20, 9, 30, 15, 250000, tzinfo=UTC),
        assertion_id="assertion-1",
    )
    envelope: Event = copy.deepcopy(V2["signature_event"])
    envelope["data"].update(signature.published())
    return envelope


def changed(event: Event, change: Callable[[Event], None]) -> Event:
    result = copy.deepcopy(event)
    change(result)
    return result


# Scheme v2: what it signs, and what fails


def test_a_signature_verifies_against_the_event_it_signs() -> None:
    assert verify_published(SIGNED, signature_event(SIGNED), KEY.public_key())


@pytest.mark.part11("11.50")
def test_the_manifest_is_the_signature_fields_and_the_signed_event_as_published() -> None:
    signature = signature_event(SIGNED)["data"]
    built = manifest(SIGNED, signature)
    assert set(built) == {*MANIFEST_FIELDS, "signed_event"}
    assert built["signed_event"] == {name: SIGNED[name] for name in SIGNED_EVENT_ATTRIBUTES}
    assert {name: built[name] for name in MANIFEST_FIELDS} == {
        name: value for name, value in signature.items() if name in MANIFEST_FIELDS
    }
    assert (built["scheme"], built["signed_event_id"]) == (SCHEME, SIGNED["id"])


def test_signed_at_is_one_string_in_the_manifest_and_the_event() -> None:
    signature = signature_event(SIGNED)["data"]
    assert signature["signed_at"] == "2026-11-20T09:30:15.250000Z"
    assert b'"signed_at":"2026-11-20T09:30:15.250000Z"' in manifest_bytes(SIGNED, signature)


@pytest.mark.part11("UTC")
def test_published_time_is_utc_with_microseconds_and_z() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert published_time(datetime(2026, 11, 20, 17, 30, tzinfo=shanghai)) == (
        "2026-11-20T09:30:00.000000Z"
    )


@pytest.mark.parametrize(
    "move",
    [
        pytest.param(lambda e: e.update(id="00000000-0000-5000-8000-000000000000"), id="event id"),
        pytest.param(lambda e: e.update(type="ScreenFailed.v1"), id="event type"),
        pytest.param(lambda e: e.update(source="/trial-ledger/infusion"), id="source"),
        pytest.param(lambda e: e.update(subject="S-903"), id="subject"),
        pytest.param(
            lambda e: e["data"].update(record_id="00000000-0000-5000-8000-000000000001"),
            id="record",
        ),
        pytest.param(lambda e: e["data"].update(version=4), id="version"),
    ],
)
@pytest.mark.part11("11.70")
def test_a_signature_moved_to_another_event_fails(move: Callable[[Event], None]) -> None:
    assert not verify_published(changed(SIGNED, move), V2["signature_event"], KEY.public_key())


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda e: e["data"]["criteria"][2].update(value="52"), id="decimal text"),
        pytest.param(lambda e: e["data"]["criteria"][0].update(met=False), id="boolean"),
        pytest.param(lambda e: e["data"].update(rule_version="other/1"), id="field"),
        pytest.param(lambda e: e["data"]["actor"].update(printed_name="Lin Wei"), id="actor"),
        pytest.param(lambda e: e["data"].update(reason=""), id="null to empty"),
        pytest.param(lambda e: e["data"].update(extra=None), id="added field"),
    ],
)
@pytest.mark.part11("11.70")
def test_a_signature_over_altered_data_fails(alter: Callable[[Event], None]) -> None:
    assert not verify_published(changed(SIGNED, alter), V2["signature_event"], KEY.public_key())


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda e: e["data"].update(meaning="authorship"), id="meaning"),
        pytest.param(lambda e: e["data"].update(printed_name="Lin Wei"), id="printed name"),
        pytest.param(lambda e: e["data"].update(signer_id="zhang.san"), id="signer"),
        pytest.param(lambda e: e["data"].update(signed_at="2026-11-20T09:30:15.25Z"), id="time"),
        pytest.param(lambda e: e["data"].update(assertion_id="assertion-2"), id="assertion"),
        pytest.param(lambda e: e["data"].update(signed_version=4), id="signed version"),
    ],
)
@pytest.mark.part11("11.70")
def test_an_altered_signature_event_fails(alter: Callable[[Event], None]) -> None:
    assert not verify_published(SIGNED, changed(V2["signature_event"], alter), KEY.public_key())


# Both shapes of an event about no subject: "subject": null as published so far, and the
# attribute left out as CloudEvents allows; one manifest, so one signature serves both.
NO_SUBJECT: Event = changed(SIGNED, lambda e: e.update(subject=None))
WITHOUT_SUBJECT: Event = changed(NO_SUBJECT, lambda e: e.pop("subject"))


def test_an_absent_subject_signs_and_verifies_as_a_null_one() -> None:
    signature = signature_event(NO_SUBJECT)
    assert manifest_bytes(NO_SUBJECT, signature["data"]) == manifest_bytes(
        WITHOUT_SUBJECT, signature["data"]
    )
    assert b'"subject":null' in manifest_bytes(WITHOUT_SUBJECT, signature["data"])
    assert verify_published(WITHOUT_SUBJECT, signature, KEY.public_key())
    assert verify_published(NO_SUBJECT, signature_event(WITHOUT_SUBJECT), KEY.public_key())


def test_unsigned_attributes_left_out_or_added_do_not_change_the_manifest() -> None:
    compact = changed(WITHOUT_SUBJECT, lambda e: e.pop("causationid"))
    compact["dataschema"] = "https://example.invalid/EligibilityConfirmed.v1.json"
    assert verify_published(compact, signature_event(NO_SUBJECT), KEY.public_key())


def test_leaving_out_a_subject_the_event_has_fails() -> None:
    without = changed(SIGNED, lambda e: e.pop("subject"))
    assert not verify_published(without, signature_event(SIGNED), KEY.public_key())


@pytest.mark.parametrize("name", ["id", "type", "source", "data"])
def test_an_event_without_its_id_type_source_or_data_verifies_nothing(name: str) -> None:
    without = changed(SIGNED, lambda e: e.pop(name))
    assert not verify_published(without, signature_event(SIGNED), KEY.public_key())


def test_a_signature_verified_with_another_key_fails() -> None:
    other = Ed25519PrivateKey.generate()
    assert not verify_published(SIGNED, V2["signature_event"], other.public_key())
    # made by the other key but naming this key's id: refused by its key id too
    forged = signature_event(SIGNED, other)
    forged["data"]["key_id"] = V2["test_key"]["key_id"]
    assert not verify_published(SIGNED, forged, KEY.public_key())


def test_a_signature_value_that_is_not_strict_base64_fails() -> None:
    value = V2["signature_event"]["data"]["value"]
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(value)).decode()
    assert urlsafe != value  # the vector's value holds a + or a /
    for bad in (value.rstrip("="), value + "\n", urlsafe):
        event = copy.deepcopy(V2["signature_event"])
        event["data"]["value"] = bad
        assert not verify_published(SIGNED, event, KEY.public_key())


def test_an_unknown_signature_type_verifies_nothing() -> None:
    unknown = changed(V2["signature_event"], lambda e: e.update(type="RecordSigned.v9"))
    assert not verify_published(SIGNED, unknown, KEY.public_key())


def test_passing_the_events_data_instead_of_the_events_is_refused_loudly() -> None:
    with pytest.raises(TypeError, match="published CloudEvents"):
        verify_published(SIGNED["data"], V2["signature_event"]["data"], KEY.public_key())


def test_an_integer_jcs_cannot_carry_exactly_is_refused_when_signing() -> None:
    huge = changed(SIGNED, lambda e: e["data"].update(version=2**53))
    with pytest.raises(rfc8785.IntegerDomainError):
        signature_event(huge)


def _schema_findings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[str, tuple[Any, ...]]]:
    """Where a JSON Schema allows a non-integer number, or any value at all."""
    found: list[tuple[str, tuple[Any, ...]]] = []
    if isinstance(node, dict):
        kinds = node.get("type")
        if "number" in (kinds if isinstance(kinds, list) else [kinds]):
            found.append(("number", path))
        if node.get("additionalProperties") is True or node == {}:
            found.append(("any value", path))
        for name, child in node.items():
            found += _schema_findings(child, (*path, name))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found += _schema_findings(child, (*path, i))
    return found


def test_published_data_holds_no_json_number_but_integers() -> None:
    """JCS renders numbers as IEEE 754 doubles would: exact for integers up to 2^53 and
    for text. Decimals are published as text; the open values are text by construction
    (enrollment's _json_value, adverse events' ASTCT inputs rendered with str)."""
    found = {
        contract.event_type: _schema_findings(contract.model_json_schema(mode="serialization"))
        for module in contract_modules().values()
        for contract in defined_events(module)
    }
    assert {kind: where for kind, where in found.items() if where} == {
        "AdverseEventGraded.v1": [("any value", ("properties", "inputs", "anyOf", 0))],
        "AdverseEventRegraded.v1": [("any value", ("properties", "inputs", "anyOf", 0))],
        "ValueCorrected.v1": [("any value", ("$defs", "JsonValue"))],
    }


# The checked-in vector: recomputed part by part


def test_the_v2_vector_key_is_the_rfc_8032_test_key() -> None:
    assert V2["test_key"]["public_key_hex"] == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert V2["test_key"]["key_id"] == key_id(KEY.public_key())


def test_the_v2_vector_manifest_is_rebuilt_from_its_two_published_events() -> None:
    assert manifest(SIGNED, V2["signature_event"]["data"]) == V2["manifest"]


def test_the_v2_vector_jcs_bytes_are_rfc_8785_of_its_manifest() -> None:
    jcs = rfc8785.dumps(V2["manifest"])
    assert jcs == V2["manifest_jcs"].encode("utf-8")
    assert hashlib.sha256(jcs).hexdigest() == V2["manifest_jcs_sha256"]
    assert manifest_bytes(SIGNED, V2["signature_event"]["data"]) == jcs


def test_the_v2_vector_signature_is_ed25519_of_the_jcs_bytes() -> None:
    # Ed25519 is deterministic: signing again gives the same 64 bytes
    again = KEY.sign(V2["manifest_jcs"].encode("utf-8"))
    assert base64.b64encode(again).decode() == V2["signature"]
    assert V2["signature_event"]["data"]["value"] == V2["signature"]
    assert verify_published(SIGNED, V2["signature_event"], public_key(V2))


def test_the_record_signer_reproduces_the_v2_vector() -> None:
    published = V2["signature_event"]["data"]
    signature = RecordSigner(KEY).sign(
        SIGNED,
        signer_id=published["signer_id"],
        printed_name=published["printed_name"],
        meaning=published["meaning"],
        signed_at=datetime.fromisoformat(published["signed_at"]),
        assertion_id=published["assertion_id"],
    )
    assert signature.published() == {k: published[k] for k in signature.published()}


def test_the_v2_vector_events_validate_against_their_contracts() -> None:
    for event in (SIGNED, V2["signature_event"]):
        parsed = CloudEvent.model_validate(event)
        assert json.loads(parsed.to_kafka_value()) == event


# Scheme v1: records signed before v2


def test_the_scheme_v1_vector_verifies() -> None:
    vector = load(V1_VECTOR)
    signed, signature = vector["signed_event"], vector["signature_event"]
    assert signature["type"] == "RecordSigned.v1"
    assert verify_published(signed, signature, public_key(vector))
    altered = changed(signed, lambda e: e["data"].update(form_version="ICF v9"))
    assert not verify_published(altered, signature, public_key(vector))
    assert not verify_published(signed, signature, Ed25519PrivateKey.generate().public_key())


def test_the_scheme_v1_bytes_are_those_rfc_8785_gives_for_its_values() -> None:
    """What docs/security.md tells a verifier of v1 outside Python: for what v1 events
    carry (ASCII keys, text, small integers, booleans, null) Python's canonical JSON and
    RFC 8785 agree, once signed_at is written as Python's isoformat wrote it."""
    vector = load(V1_VECTOR)
    data, signature = vector["signed_event"]["data"], vector["signature_event"]["data"]
    assert rfc8785.dumps(data).decode() == vector["content_canonical_json"]
    assert hashlib.sha256(rfc8785.dumps(data)).hexdigest() == signature["content_hash"]
    message = {
        **{name: signature[name] for name in ("signer_id", "printed_name", "meaning",
           "content_hash", "assertion_id", "key_id", "algorithm")},
        "record_id": signature["signed_record_id"],
        "record_version": signature["signed_version"],
        "signed_at": datetime.fromisoformat(signature["signed_at"]).isoformat(),
    }  # fmt: skip
    assert rfc8785.dumps(message).decode() == vector["signed_message"]
    public_key(vector).verify(base64.b64decode(signature["value"]), rfc8785.dumps(message))


def test_a_record_signed_under_scheme_v1_loads_and_publishes_as_it_did() -> None:
    fixture = load(STORED_V1)
    app = EnrollmentApplication(env=MEMORY)
    app.recorder.insert_events(
        [
            StoredEvent(UUID(e["originator_id"]), e["originator_version"], e["topic"],
                        e["state"].encode())
            for e in fixture["stored"]
        ]
    )  # fmt: skip
    record: Any = app.repository.get(UUID(fixture["stored"][0]["originator_id"]))
    [signature] = record.signatures
    assert isinstance(signature, SignatureV1)
    assert signature.manifestation()["meaning"] == "responsibility"
    republished = [
        CloudEvent.wrap(to_contract(app.mapper.to_domain_event(n)), n.id).to_kafka_value()
        for n in app.notification_log.select(1, 10)
    ]
    assert [text.decode() for text in republished] == fixture["published"]


def test_a_new_signature_is_stored_under_its_own_name() -> None:
    assert Signature.stored_as != SignatureV1.stored_as == "shared.signatures.Signature"
