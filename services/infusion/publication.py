"""What the infusion service publishes: each stored event mapped, by class, to its contract."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from services.infusion.domain import Treatment
from shared.contracts import infusion as contracts
from shared.kernel.publication import Publication, fields_of

SERVICE = "infusion"


def _day(value: date) -> datetime:
    return datetime.combine(value, time(), tzinfo=UTC)


def _fields(obj: Any) -> dict[str, Any]:
    return dict(obj.__dict__)


_CLINICAL_TIME: dict[type, Callable[[Any], datetime]] = {
    Treatment.LeukapheresisPerformed: lambda e: _day(e.apheresis.performed_on),
    Treatment.ProductReleased: lambda e: _day(e.release.released_on),
    Treatment.LymphodepletionAdministered: lambda e: _day(e.regimen.completed_on),
    Treatment.CarTInfused: lambda e: e.infusion.started_at,
}


def _occurred_at(event: Any) -> datetime:
    """The clinical time of each step; the recording time for the others."""
    clinical = _CLINICAL_TIME.get(type(event))
    return event.timestamp if clinical is None else clinical(event)


def _infused(e: Any) -> dict[str, Any]:
    return {
        "dose_level": e.dose_level,
        "weight_kg": e.infusion.weight_kg,
        "lots": [contracts.InfusedLotV1(**_fields(lot)) for lot in e.infusion.lots],
        "total_viable_car_positive_cells": sum(
            (lot.viable_car_positive_cells for lot in e.infusion.lots), Decimal(0)
        ),
        "cells_per_kg_millions": e.cells_per_kg_millions,
        "started_at": e.infusion.started_at,
        "ended_at": e.infusion.ended_at,
        "administered_by": e.infusion.administered_by,
        "rule_version": e.rule_version,
    }


PUBLICATION = Publication(
    SERVICE,
    {Treatment: contracts.RECORD_TYPE},
    {
        Treatment.LeukapheresisPerformed: (
            contracts.LeukapheresisPerformedV1,
            lambda e: _fields(e.apheresis),
        ),
        Treatment.ProductReleased: (contracts.ProductReleasedV1, lambda e: _fields(e.release)),
        Treatment.LymphodepletionAdministered: (
            contracts.LymphodepletionAdministeredV1,
            lambda e: {
                "agents": [contracts.AgentDoseV1(**_fields(a)) for a in e.regimen.agents],
                "started_on": e.regimen.started_on,
                "completed_on": e.regimen.completed_on,
            },
        ),
        Treatment.CarTInfused: (contracts.CarTInfusedV1, _infused),
        Treatment.InfusionNotGiven: (contracts.InfusionNotGivenV1, fields_of("reason")),
        Treatment.InfusionInterrupted: (contracts.InfusionInterruptedV1, fields_of("reason")),
    },
    occurred_at=_occurred_at,
)
to_contract = PUBLICATION.to_contract
