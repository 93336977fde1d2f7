"""Helpers every service's publication module uses."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

_EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:trial-ledger:event")


def event_id(record_id: UUID, version: int) -> UUID:
    """A stored event's id: the same every time it is published, so consumers can dedupe."""
    return uuid5(_EVENT_ID_NAMESPACE, f"{record_id}/{version}")
