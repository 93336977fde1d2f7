"""A ledger entry's event as the views, replays and endpoints read it: its payload's JSON
and the few envelope fields they use, without validating the whole envelope again.

Every payload in the ledger was validated when it was ingested (the envelope and the
payload against its contract, ``Parser``), and is never changed after (an append-only
table, and ``verify`` finds any change by its hash). Reading it back through the full
pydantic ``CloudEvent`` validated it a second time, for a quarter of a rebuild's time
(docs/performance.md, ``bench.rebuild``). ``RecordedEvent.of`` checks only what it takes:
a payload that is not a JSON object with those fields, of those types (possible only by
tampering), raises ``CorruptEntry`` naming its position; it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from shared.contracts.security import RecordSignedV1, RecordSignedV2
from shared.kernel.errors import Damaged

# Fields every payload carries; the rest are the event's own (docs/integrating.md, Envelope).
COMMON_FIELDS = frozenset(
    {
        "event_id",
        "subject_id",
        "record_type",
        "record_id",
        "version",
        "occurred_at",
        "recorded_at",
        "actor",
        "reason",
        "correlation_id",
        "causation_id",
        "source",
    }
)
# A signature of either scheme shows the same manifestation (docs/security.md).
RECORD_SIGNED = frozenset({RecordSignedV1.event_type, RecordSignedV2.event_type})


class Recorded(Protocol):
    """The envelope fields read from a recorded event; a ``CloudEvent`` has them too, so
    the pure reducers take either (the tests build ``CloudEvent`` s, as services publish)."""

    @property
    def id(self) -> UUID: ...
    @property
    def source(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def time(self) -> datetime: ...
    @property
    def recordedtime(self) -> datetime: ...
    @property
    def data(self) -> dict[str, Any]: ...


class CorruptEntry(Damaged, ValueError):
    """A ledger entry's payload is not an event (the ledger was changed behind its back)."""


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    id: UUID
    source: str
    type: str
    subject: str | None
    time: datetime
    recordedtime: datetime
    data: dict[str, Any]

    @classmethod
    def of(cls, payload: bytes) -> RecordedEvent:
        """The event of a ledger entry's payload (its CloudEvent JSON)."""
        try:
            envelope = json.loads(payload)
            subject = envelope.get("subject")
            data = envelope["data"]
            if not (subject is None or isinstance(subject, str)) or not isinstance(data, dict):
                raise TypeError("subject is not text or data is not an object")
            return cls(
                UUID(envelope["id"]),
                _text(envelope["source"]),
                _text(envelope["type"]),
                subject,
                _aware(envelope["time"]),
                _aware(envelope["recordedtime"]),
                data,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CorruptEntry(f"not an event: {type(error).__name__}: {error}") from error


def recorded(entries: Iterable[tuple[int, bytes]]) -> list[tuple[int, RecordedEvent]]:
    """``(position, payload)`` pairs (rows of ``ledger_entries``) as ``(position, event)``."""
    events = []
    for position, payload in entries:
        try:
            events.append((position, RecordedEvent.of(payload)))
        except CorruptEntry as error:
            raise CorruptEntry(f"ledger entry {position}: {error}", position=position) from (
                error.__cause__
            )
    return events


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _aware(value: object) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment
