"""What the ledger takes from what the services publish: every published type of every
service is known to it, and a published event becomes an entry kept byte for byte (the
projections service publishes nothing itself; its consumers read the ledger's API)."""

from __future__ import annotations

import json

import pytest
from aiokafka import ConsumerRecord

from services.projections.__main__ import known_contracts
from services.projections.domain import entry_leaf
from services.projections.ingest import Parser
from services.projections.ledger import NewEntry
from shared.contract_docs.discovery import channels, publication_of
from shared.kernel.envelope import CloudEvent
from tests.projections.conftest import published_events

SERVICES = [channel.service for channel in channels()]


def record(event: CloudEvent, value: bytes | None = None) -> ConsumerRecord[bytes, bytes]:
    value = event.to_kafka_value() if value is None else value
    return ConsumerRecord(
        topic="trialledger.enrollment.events", partition=1, offset=7, timestamp=0,
        timestamp_type=0, key=event.kafka_key(), value=value, checksum=None,
        serialized_key_size=-1, serialized_value_size=len(value), headers=(),
    )  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
def test_the_ledger_knows_every_type_a_service_publishes(service: str) -> None:
    known = known_contracts()
    for contract in publication_of(service).contracts:
        assert known.get(contract.event_type) is contract, f"{service}: {contract.event_type}"


def test_a_published_event_becomes_an_entry_kept_exactly_as_published() -> None:
    for event in published_events(subjects=1):
        entry = Parser(known_contracts()).parse(record(event))
        assert isinstance(entry, NewEntry), entry
        assert entry.payload == event.to_kafka_value()
        assert (entry.event_id, entry.event_type, entry.subject_id) == (
            event.id, event.type, event.subject,
        )  # fmt: skip
        assert (entry.topic, entry.partition, entry.offset) == (
            "trialledger.enrollment.events", 1, 7,
        )  # fmt: skip
        assert entry_leaf(1, entry.payload) != entry_leaf(2, entry.payload)


def test_an_event_whose_envelope_and_payload_ids_differ_is_refused() -> None:
    first, second = published_events(subjects=1)[:2]
    forged = first.model_copy(update={"data": {**first.data, "event_id": str(second.id)}})
    assert (
        Parser(known_contracts()).parse(record(forged)) == "envelope id and payload event_id differ"
    )


def test_an_unknown_type_is_named_not_appended() -> None:
    event = published_events(subjects=1)[0]
    assert Parser({}).parse(record(event)) == f"unknown event type {event.type!r}"


def test_a_record_without_null_attributes_and_with_a_dataschema_is_kept_as_sent() -> None:
    """CloudEvents leaves unset attributes out; the ledger takes that shape too, byte for byte."""
    event = published_events(subjects=1)[0]
    compact = json.loads(event.to_kafka_value())
    del compact["subject"], compact["causationid"]
    compact["dataschema"] = "https://example.invalid/SubjectRegistered.v1.json"
    value = json.dumps(compact).encode()
    entry = Parser(known_contracts()).parse(record(event, value))
    assert isinstance(entry, NewEntry), entry
    assert (entry.payload, entry.subject_id) == (value, None)


def test_a_record_that_fails_is_refused_for_its_first_fault_envelope_then_payload() -> None:
    """Validated once when valid; a dead letter still names the envelope's fault before the
    payload's, and the payload's field."""
    event = published_events(subjects=1)[0]
    document = json.loads(event.to_kafka_value())
    bad_payload = {**document, "data": {**document["data"], "version": "two"}}
    bad_both = {key: value for key, value in bad_payload.items() if key != "id"}
    parser = Parser(known_contracts())
    payload, both, not_json = (
        str(parser.parse(record(event, value)))
        for value in (json.dumps(bad_payload).encode(), json.dumps(bad_both).encode(), b"{")
    )
    assert payload.startswith(f"payload does not match {event.type}: version: ")
    assert both == "not a CloudEvents 1.0 structured event: id: Field required"
    assert not_json.startswith("not a CloudEvents 1.0 structured event: ")
