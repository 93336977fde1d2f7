"""Whether the ledger holds every stored event of every service, and nothing else
(Part 11 §11.10(a)). Pure: the stores are read through their own APIs
(``services.projections.stores``), the ledger by the application.

- ``completeness`` (part of ``verify``): per service, each stored event absent from the
  ledger, named by service, store position and event id. An event recorded less than
  ``stall_after`` seconds ago is in flight, not missing.
- ``compare`` (``reconcile``): every stored event exactly once in the ledger, byte for
  byte, and no ledger entry of a source that its store does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

LedgerRow = tuple[int, str, str, bytes]  # position, source, event id, payload


@dataclass(frozen=True)
class StoreEndpoint:
    service: str
    url: str

    @property
    def source(self) -> str:
        """The ``source`` its events carry in the ledger."""
        return f"/trial-ledger/{self.service}"


@dataclass(frozen=True)
class StoredEvent:
    """One stored event as its service publishes it (``payload`` None: ids only, or it
    cannot be published, and then ``problem`` says why)."""

    position: int
    event_id: str
    event_type: str | None = None
    recorded_at: datetime | None = None
    payload: bytes | None = None
    problem: str | None = None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> StoredEvent:
        recorded = document.get("recorded_at")
        payload = document.get("payload")
        return cls(
            position=int(document["position"]),
            event_id=str(document["event_id"]),
            event_type=document.get("event_type"),
            recorded_at=None if recorded is None else datetime.fromisoformat(recorded),
            payload=None if payload is None else str(payload).encode(),
            problem=document.get("problem"),
        )


@dataclass
class StoreReading:
    """What one service's store holds (as far as it could be read)."""

    endpoint: StoreEndpoint
    head: dict[str, Any] | None = None
    events: list[StoredEvent] = field(default_factory=list)
    problem: str | None = None  # why it could not be read (whole or in part)


@dataclass(frozen=True)
class StoreFinding:
    """Something the stores and the ledger disagree on, or that could not be checked."""

    service: str
    kind: str  # missing_from_ledger | quarantined | unpublishable | not_in_store
    #            | store_unreachable
    detail: str
    store_position: int | None = None
    event_id: str | None = None
    recorded_at: str | None = None


@dataclass
class StoreSummary:
    """One service's store against the ledger."""

    service: str
    head: Mapping[str, Any] | None
    ledger_entries: int
    missing: int = 0
    in_flight: int = 0
    findings: list[StoreFinding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        head = self.head or {}
        return {
            "service": self.service,
            "store_position": head.get("position"),
            "store_events": head.get("count"),
            "ledger_entries": self.ledger_entries,
            "missing_from_ledger": self.missing,
            "in_flight": self.in_flight,
            "quarantined": len(head.get("quarantined", [])),
        }


def complete_by_head(head: Mapping[str, Any], in_ledger: set[str]) -> bool:
    """The cheap check: as many entries as stored events, the newest among them, and
    nothing held back. (Entries of a source are unique by event id; any doubt is settled
    by comparing every id.)"""
    last = head.get("last_event_id")
    return (
        head.get("count") == len(in_ledger)
        and (last is None or last in in_ledger)
        and not head.get("quarantined")
    )


def completeness(
    reading: StoreReading,
    in_ledger: set[str],
    details: Mapping[int, StoredEvent],
    now: datetime,
    stall_after: float,
) -> StoreSummary:
    """The stored events of ``reading`` missing from the ledger, with ``details`` (the
    missing ones as published: their type and recorded time) where they were read."""
    service = reading.endpoint.service
    summary = StoreSummary(service, reading.head, len(in_ledger))
    if reading.problem is not None:
        summary.findings.append(StoreFinding(service, "store_unreachable", reading.problem))
        return summary
    held = {q["position"]: q for q in (reading.head or {}).get("quarantined", [])}
    cutoff = now - timedelta(seconds=stall_after)
    if reading.events:  # every id was compared: the ledger holds nothing the store lacks
        for event_id in sorted(in_ledger - {e.event_id for e in reading.events}):
            why = f"the ledger holds event {event_id} as from {service}; its store does not"
            summary.findings.append(StoreFinding(service, "not_in_store", why, None, event_id))
    for event in reading.events:
        if event.event_id in in_ledger:
            continue
        detail = details.get(event.position, event)
        recorded = detail.recorded_at
        if recorded is not None and recorded > cutoff and event.position not in held:
            summary.in_flight += 1
            continue
        summary.missing += 1
        summary.findings.append(_missing(service, event, detail, held.get(event.position)))
    return summary


def _missing(
    service: str, event: StoredEvent, detail: StoredEvent, held: Mapping[str, Any] | None
) -> StoreFinding:
    recorded = None if detail.recorded_at is None else detail.recorded_at.isoformat()
    what = f"{detail.event_type or 'event'} at store position {event.position}"
    if held is not None:
        kind, why = "quarantined", f"held by the relay: {held['reason']}"
    elif detail.problem is not None:
        kind, why = "unpublishable", detail.problem
    else:
        kind, why = "missing_from_ledger", f"recorded {recorded or 'at an unknown time'}"
    return StoreFinding(service, kind, f"{what} is not in the ledger: {why}",
                        event.position, event.event_id, recorded)  # fmt: skip


def compare(
    readings: Sequence[StoreReading],
    ledger: Sequence[LedgerRow],
    now: datetime,
    stall_after: float,
) -> dict[str, list[dict[str, Any]]]:
    """Differences between the stores and the ledger rows."""
    in_ledger: dict[str, list[tuple[int, str, bytes]]] = {}
    for position, source, event_id, payload in ledger:
        in_ledger.setdefault(event_id, []).append((position, source, payload))
    found: dict[str, list[dict[str, Any]]] = {
        kind: []
        for kind in (
            "missing",
            "in_flight",
            "different",
            "duplicated",
            "unknown",
            "unpublishable",
            "unreadable_store",
        )
    }
    cutoff = now - timedelta(seconds=stall_after)
    expected: set[str] = set()
    read_sources: set[str] = set()
    for reading in readings:
        source = reading.endpoint.source
        if reading.problem is not None:
            found["unreadable_store"].append({"source": source, "problem": reading.problem})
            continue
        read_sources.add(source)
        for event in reading.events:
            expected.add(event.event_id)
            kind, item = _difference(event, in_ledger.get(event.event_id, []), cutoff)
            if kind:
                found[kind].append({"source": source, **item})
    # an entry no store holds: of a store that was read, or of a source that is no
    # service's at all (only an unreadable store's entries cannot be judged)
    unread = {r.endpoint.source for r in readings} - read_sources
    found["unknown"] = [
        {"event_id": event_id, "positions": [f[0] for f in rows], "source": rows[0][1]}
        for event_id, rows in in_ledger.items()
        if event_id not in expected and rows[0][1] not in unread
    ]
    return found


def _difference(
    event: StoredEvent, rows: Sequence[tuple[int, str, bytes]], cutoff: datetime
) -> tuple[str | None, dict[str, Any]]:
    item: dict[str, Any] = {"event_id": event.event_id, "store_position": event.position}
    if event.problem is not None:
        return "unpublishable", {**item, "problem": event.problem}
    if not rows:
        recent = event.recorded_at is not None and event.recorded_at > cutoff
        return ("in_flight" if recent else "missing"), item
    if len(rows) > 1:
        return "duplicated", {**item, "positions": [r[0] for r in rows]}
    if rows[0][2] != event.payload:
        return "different", {**item, "position": rows[0][0]}
    return None, item
