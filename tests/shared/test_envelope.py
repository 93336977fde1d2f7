"""The CloudEvents envelope: the bytes every event has been published with stay the same,
and a record in CloudEvents' compact shape (unset attributes left out) is read too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.kernel.envelope import CloudEvent

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
