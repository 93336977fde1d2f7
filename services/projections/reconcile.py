"""Reconciliation of the ledger with every service's event store (Part 11 §11.10(a)).

An auditor's tool, not part of the running service: it reads each store through its
service's own application and publication mapping, so it recomputes the exact bytes
the relay publishes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.publication import to_contract as ae_contract
from services.assessments.application import AssessmentsApplication
from services.assessments.publication import to_contract as assessments_contract
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import to_contract as enrollment_contract
from services.identity.application import IdentityApplication
from services.identity.publication import to_contract as identity_contract
from services.infusion.application import InfusionApplication
from services.infusion.publication import to_contract as infusion_contract
from shared.envelope import CloudEvent, EventData
from shared.eventstore import ServiceApplication, postgres_env
from shared.settings import ServiceSettings

StoreEvents = list[tuple[str, bytes]]  # (event id, published bytes), in store order
SOURCES: dict[
    str, tuple[Callable[[dict[str, str]], ServiceApplication], Callable[[Any], EventData]]
] = {
    "/trial-ledger/enrollment": (lambda env: EnrollmentApplication(env=env), enrollment_contract),
    "/trial-ledger/identity": (lambda env: IdentityApplication(env=env), identity_contract),
    "/trial-ledger/infusion": (lambda env: InfusionApplication(env=env), infusion_contract),
    "/trial-ledger/adverse_events": (lambda env: AdverseEventsApplication(env=env), ae_contract),
    "/trial-ledger/assessments": (
        lambda env: AssessmentsApplication(env=env),
        assessments_contract,
    ),
}


def read_stores(env: Mapping[str, str] | None = None) -> dict[str, StoreEvents]:
    """Every stored event of every service, as its relay publishes it."""
    env = dict(os.environ if env is None else env)
    stores: dict[str, StoreEvents] = {}
    for source, (make, to_contract) in SOURCES.items():
        service = source.rsplit("/", 1)[-1]
        settings = ServiceSettings.from_env(service, env)
        application = make(postgres_env(settings.database))
        try:
            stores[source] = list(_published(application, to_contract))
        finally:
            application.close()
    return stores


def _published(
    application: ServiceApplication, to_contract: Callable[[Any], EventData]
) -> Sequence[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for notification_id, event in application.stored_events():
        data = to_contract(event)
        out.append((str(data.event_id), CloudEvent.wrap(data, notification_id).to_kafka_value()))
    return out


def compare(
    stores: Mapping[str, StoreEvents], ledger: Sequence[tuple[int, str, str, bytes]]
) -> dict[str, list[dict[str, Any]]]:
    """Differences between the stores and the ledger rows (position, source, id, payload)."""
    in_ledger: dict[str, list[tuple[int, str, bytes]]] = {}
    for position, source, event_id, payload in ledger:
        in_ledger.setdefault(event_id, []).append((position, source, payload))
    missing, differing, doubled = [], [], []
    expected: set[str] = set()
    for source, events in stores.items():
        for event_id, payload in events:
            expected.add(event_id)
            found = in_ledger.get(event_id, [])
            if not found:
                missing.append({"source": source, "event_id": event_id})
            elif len(found) > 1:
                doubled.append({"event_id": event_id, "positions": [f[0] for f in found]})
            elif found[0][2] != payload:
                differing.append({"event_id": event_id, "position": found[0][0]})
    extra = [
        {"event_id": event_id, "positions": [f[0] for f in found]}
        for event_id, found in in_ledger.items()
        if event_id not in expected and found[0][1] in stores
    ]
    return {"missing": missing, "different": differing, "duplicated": doubled, "unknown": extra}
