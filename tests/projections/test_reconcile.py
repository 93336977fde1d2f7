"""What verify and reconcile conclude from the stores and the ledger (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.projections.reconcile import (
    StoredEvent,
    StoreEndpoint,
    StoreReading,
    compare,
    complete_by_head,
    completeness,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ENROLLMENT = StoreEndpoint("enrollment", "http://enrollment")


def stored(position: int, age: float, problem: str | None = None) -> StoredEvent:
    return StoredEvent(
        position=position,
        event_id=f"e-{position}",
        event_type="SubjectRegistered.v1",
        recorded_at=NOW - timedelta(seconds=age),
        payload=None if problem else f"payload {position}".encode(),
        problem=problem,
    )


def reading(*events: StoredEvent, **head: Any) -> StoreReading:
    return StoreReading(ENROLLMENT, {"count": len(events), "quarantined": [], **head}, list(events))


def test_a_store_whose_count_and_newest_event_are_in_the_ledger_is_complete() -> None:
    assert complete_by_head({"count": 2, "last_event_id": "e-2", "quarantined": []}, {"e-1", "e-2"})
    assert not complete_by_head({"count": 3, "last_event_id": "e-3"}, {"e-1", "e-2"})
    assert not complete_by_head({"count": 2, "last_event_id": "e-3"}, {"e-1", "e-2"})
    held = {"count": 2, "last_event_id": "e-2", "quarantined": [{"position": 2}]}
    assert not complete_by_head(held, {"e-1", "e-2"})


def test_an_event_missing_past_the_threshold_is_named_by_service_position_and_id() -> None:
    summary = completeness(reading(stored(1, 90), stored(2, 45), stored(3, 5)),
                           {"e-1"}, {}, NOW, stall_after=30)  # fmt: skip
    assert [(f.kind, f.service, f.store_position, f.event_id) for f in summary.findings] == [
        ("missing_from_ledger", "enrollment", 2, "e-2")
    ]
    assert (summary.missing, summary.in_flight) == (1, 1)
    assert "SubjectRegistered.v1 at store position 2" in summary.findings[0].detail


def test_a_quarantined_event_is_missing_at_once_with_the_relays_reason() -> None:
    held = [{"position": 1, "reason": "KeyError: 'form_version'"}]
    summary = completeness(reading(stored(1, 1), quarantined=held), set(), {}, NOW, 30)
    (finding,) = summary.findings
    assert finding.kind == "quarantined" and "KeyError" in finding.detail


def test_details_read_back_give_the_type_and_time_of_an_id_only_listing() -> None:
    ids_only = StoredEvent(7, "e-7")
    details = {7: stored(7, 3600)}
    summary = completeness(reading(ids_only), set(), details, NOW, 30)
    assert summary.findings[0].recorded_at == (NOW - timedelta(hours=1)).isoformat()


def test_a_ledger_entry_its_store_does_not_hold_is_named() -> None:
    summary = completeness(reading(stored(1, 90)), {"e-1", "e-forged"}, {}, NOW, 30)
    assert [(f.kind, f.event_id) for f in summary.findings] == [("not_in_store", "e-forged")]


def test_an_unreachable_store_is_a_finding_not_an_error() -> None:
    unreachable = StoreReading(ENROLLMENT, problem="enrollment store: ConnectError")
    summary = completeness(unreachable, {"e-1"}, {}, NOW, 30)
    assert [f.kind for f in summary.findings] == ["store_unreachable"]


def test_reconcile_sorts_every_difference_by_kind() -> None:
    events = [stored(1, 90), stored(2, 90), stored(3, 90), stored(4, 90, problem="KeyError"),
              stored(5, 90), stored(6, 1)]  # fmt: skip
    ledger = [
        (1, ENROLLMENT.source, "e-1", b"payload 1"),
        (2, ENROLLMENT.source, "e-2", b"altered"),
        (3, ENROLLMENT.source, "e-3", b"payload 3"),
        (4, ENROLLMENT.source, "e-3", b"payload 3"),
        (5, ENROLLMENT.source, "e-forged", b"{}"),
        (6, "/trial-ledger/nowhere", "e-foreign", b"{}"),
        (7, "/trial-ledger/infusion", "e-unjudged", b"{}"),
    ]
    unreadable = StoreReading(StoreEndpoint("infusion", "http://infusion"), problem="timeout")
    found = compare([reading(*events), unreadable], ledger, NOW, stall_after=30)
    assert {kind: [d.get("event_id") for d in items] for kind, items in found.items()} == {
        "missing": ["e-5"],
        "in_flight": ["e-6"],
        "different": ["e-2"],
        "duplicated": ["e-3"],
        "unknown": ["e-forged", "e-foreign"],
        "unpublishable": ["e-4"],
        "unreadable_store": [None],
    }
