"""The CloudEvents envelope: the bytes every event has been published with stay the same,
and a record in CloudEvents' compact shape (unset attributes left out) is read too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.kernel.envelope import CloudEvent, schema_uri

ROOT = Path(__file__).resolve().parents[2]
# EligibilityConfirmed.v1 as published (docs/examples/record-signature-v2.json)
PUBLISHED: dict[str, Any] = json.loads(
    (ROOT / "docs/examples/record-signature-v2.json").read_text("utf-8")
)["signed_event"]


def as_sent(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def test_an_event_is_rendered_with_the_bytes_it_was_published_with() -> None:
    assert CloudEvent.model_validate(PUBLISHED).to_kafka_value() == as_sent(PUBLISHED)


def test_unset_subject_and_causationid_are_still_rendered_as_null() -> None:
    """The relay and GET /store/events render stored events again; the ledger compares
    those bytes with the ones it holds, so a stored event's rendering never changes."""
    no_subject = {**PUBLISHED, "subject": None, "causationid": None}
    rendered = CloudEvent.model_validate(no_subject).to_kafka_value()
    assert rendered == as_sent(no_subject)
    assert b'"subject":null' in rendered and b"dataschema" not in rendered


def test_a_compact_record_with_a_dataschema_is_read_and_keeps_its_dataschema() -> None:
    compact = {k: v for k, v in PUBLISHED.items() if k not in ("subject", "causationid")}
    compact = {**compact, "dataschema": "https://example.invalid/EligibilityConfirmed.v1.json"}
    event = CloudEvent.from_kafka_value(as_sent(compact))
    assert (event.subject, event.causationid) == (None, None)
    assert event.dataschema == compact["dataschema"]
    assert json.loads(event.to_kafka_value())["dataschema"] == compact["dataschema"]


def test_the_compact_form_leaves_unset_attributes_out_and_renders_its_own_bytes_again() -> None:
    """From a store's cutover on, records name their schema and omit what has no value;
    read back, each form renders the bytes it was published with."""
    unset = {**PUBLISHED, "subject": None, "causationid": None}
    compact = CloudEvent.model_validate({**unset, "dataschema": schema_uri(PUBLISHED["type"])})
    value = compact.to_kafka_value()
    assert b"subject" not in value.replace(b'"subject_id"', b"")
    assert b"causationid" not in value
    assert json.loads(value)["dataschema"] == "urn:trial-ledger:schema:EligibilityConfirmed.v1"
    assert CloudEvent.from_kafka_value(value).to_kafka_value() == value
    first = CloudEvent.model_validate(unset).to_kafka_value()
    assert CloudEvent.from_kafka_value(first).to_kafka_value() == first


def test_every_published_schema_has_the_id_its_records_name() -> None:
    for path in (ROOT / "docs/schemas").glob("*/*.json"):
        assert json.loads(path.read_text("utf-8"))["$id"] == schema_uri(path.stem), path
