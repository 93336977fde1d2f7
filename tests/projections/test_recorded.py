"""A ledger entry read back without a second validation gives the event the ingester
validated, field for field, and the same views; a payload that is not an event is refused
by its position, never skipped (pure, no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.projections.recorded import CorruptEntry, RecordedEvent, recorded
from services.projections.views import subject_state, trail_rows
from shared.clinical import STUDY  # the first study's calendar: these ledgers are its
from shared.kernel.envelope import CloudEvent, schema_uri
from tests.projections.conftest import published_events

STORED_V1 = Path(__file__).parents[1] / "shared/fixtures/stored-signature-v1.json"
FIELDS = ("id", "source", "type", "subject", "time", "recordedtime", "data")


def payloads() -> list[bytes]:
    """Both forms of record: the compact one and the first, as published before."""
    stored = [text.encode() for text in json.loads(STORED_V1.read_text())["published"]]
    events = published_events(subjects=1)
    compact = [e.model_copy(update={"dataschema": schema_uri(e.type)}) for e in events]
    return stored + [e.to_kafka_value() for e in events + compact]


def test_a_recorded_event_has_the_fields_and_views_of_the_validated_one() -> None:
    state, checked = None, None
    for position, payload in enumerate(payloads(), start=1):
        validated, read = CloudEvent.from_kafka_value(payload), RecordedEvent.of(payload)
        assert [getattr(read, f) for f in FIELDS] == [getattr(validated, f) for f in FIELDS]
        assert read.time.isoformat() == validated.time.isoformat()
        assert trail_rows(position, read) == trail_rows(position, validated)
        state = subject_state(state, read, position, STUDY)
        checked = subject_state(checked, validated, position, STUDY)
        assert state == checked
    assert {e.dataschema is None for e in map(CloudEvent.from_kafka_value, payloads())} == {
        True,
        False,
    }


EVENT = json.loads(payloads()[-1])
NOT_EVENTS = {
    "not JSON": b"\x00garbage",
    "not an object": b"[1, 2]",
    "no id": json.dumps({k: v for k, v in EVENT.items() if k != "id"}).encode(),
    "an id that is no UUID": json.dumps({**EVENT, "id": "42"}).encode(),
    "a type that is not text": json.dumps({**EVENT, "type": 7}).encode(),
    "a subject that is not text": json.dumps({**EVENT, "subject": ["S-001"]}).encode(),
    "a time without a zone": json.dumps({**EVENT, "time": "2026-12-02T09:30:00"}).encode(),
    "no recorded time": json.dumps({**EVENT, "recordedtime": None}).encode(),
    "data that is no object": json.dumps({**EVENT, "data": "{}"}).encode(),
}


@pytest.mark.parametrize("payload", NOT_EVENTS.values(), ids=NOT_EVENTS.keys())
def test_a_payload_that_is_not_an_event_is_refused_at_its_position(payload: bytes) -> None:
    good = payloads()[-1]
    with pytest.raises(CorruptEntry, match=r"^ledger entry 8: not an event: "):
        recorded([(7, good), (8, payload), (9, good)])
    assert [p for p, _ in recorded([(7, good), (9, good)])] == [7, 9]
