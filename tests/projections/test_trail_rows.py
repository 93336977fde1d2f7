"""The audit trail has a row for every event, whatever fields it sets (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.projections.views import TRAIL_CHANGES, json_text, trail_rows
from shared.contract_docs.discovery import channels
from shared.kernel.envelope import CloudEvent

PUBLISHED = sorted({(c.source, e.event_type) for c in channels() for e in c.events})
NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def bare_event(source: str, event_type: str) -> CloudEvent:
    """The event with only the fields every event carries: none of its own."""
    data = {
        "event_id": str(uuid4()),
        "subject_id": "S-001",
        "record_type": "Subject",
        "record_id": str(uuid4()),
        "version": 3,
        "occurred_at": NOW.isoformat(),
        "recorded_at": NOW.isoformat(),
        "actor": {"user_id": "lin.wei", "printed_name": "Lin Wei", "role": "investigator"},
        "reason": "moved abroad",
        "correlation_id": "corr-1",
    }
    envelope = {"source": source, "type": event_type, "subject": "S-001", "sequence": "1"}
    return CloudEvent(
        id=uuid4(), time=NOW, recordedtime=NOW, correlationid="corr-1", data=data, **envelope
    )


# Types with a trail of their own (a correction, a signature) always carry its fields.
SET_THEIR_FIELDS = [(source, t) for source, t in PUBLISHED if t not in TRAIL_CHANGES]


def test_every_published_event_type_is_enumerated() -> None:
    assert "SubjectWithdrawn.v1" in {event_type for _, event_type in SET_THEIR_FIELDS}
    assert set(TRAIL_CHANGES) <= {event_type for _, event_type in PUBLISHED}


@pytest.mark.parametrize(("source", "event_type"), SET_THEIR_FIELDS)
def test_an_event_setting_no_field_of_its_own_still_has_a_trail_row(
    source: str, event_type: str
) -> None:
    rows = trail_rows(7, bare_event(source, event_type))
    assert rows, f"{event_type} would be missing from the audit trail"
    assert {(r.event_type, r.position, r.reason) for r in rows} == {(event_type, 7, "moved abroad")}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=8,
)


@given(JSON)
def test_a_value_in_the_trail_is_the_json_text_json_dumps_gives(value: Any) -> None:
    assert json_text(value) == json.dumps(value, sort_keys=True, ensure_ascii=False)
