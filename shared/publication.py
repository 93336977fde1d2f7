"""Helpers every service's publication module uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.access import access_denied_contract, signature_contract
from shared.envelope import ActorV1, EventData, SourceV1
from shared.provenance import Provenance

_EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:trial-ledger:event")


def event_id(record_id: UUID, version: int) -> UUID:
    """A stored event's id: the same every time it is published, so consumers can dedupe."""
    return uuid5(_EVENT_ID_NAMESPACE, f"{record_id}/{version}")


Build = Callable[[Any, dict[str, Any]], EventData]


def to_published(
    event: Any,
    service: str,
    record_type: str,
    builders: Mapping[str, Build],
    occurred_at: Callable[[Any], datetime],
) -> EventData:
    """A stored event of a subject record as its published contract.

    ``builders`` maps event class names to the service's own contracts; denials and
    signatures, which every service records, are mapped here.
    """
    name = type(event).__name__
    if name == "AccessDenied":
        return access_denied_contract(
            event, service, event_id(event.originator_id, event.originator_version)
        )
    common = common_fields(event, service, record_type, occurred_at(event))
    if name == "RecordSigned":
        return signature_contract(event, common)
    return builders[name](event, common)


def common_fields(
    event: Any, service: str, record_type: str, occurred_at: datetime
) -> dict[str, Any]:
    """The fields every published event carries (DESIGN.md, Events)."""
    provenance: Provenance = event.provenance
    actor = provenance.actor
    return {
        "event_id": event_id(event.originator_id, event.originator_version),
        "subject_id": event.subject_id,
        "record_type": record_type,
        "record_id": event.originator_id,
        "version": event.originator_version,
        "occurred_at": occurred_at,
        "recorded_at": event.timestamp,
        "actor": ActorV1(
            user_id=actor.user_id, printed_name=actor.printed_name, role=actor.role, site=actor.site
        ),
        "correlation_id": provenance.correlation_id,
        "causation_id": provenance.causation_id,
        "source": SourceV1(service=service, client_id=provenance.client_id),
    }
