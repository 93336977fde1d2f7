"""What the infusion service publishes: each stored event mapped to its contract."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from shared.contracts import infusion as contracts
from shared.envelope import EventData
from shared.publication import to_published

SERVICE = "infusion"


def to_contract(event: Any) -> EventData:
    """Map a stored Treatment event to its published contract."""
    builders = {name: build for name, (_, build) in _BUILDERS.items()}
    return to_published(event, SERVICE, contracts.RECORD_TYPE, builders, _occurred_at)


def _occurred_at(event: Any) -> datetime:
    """The clinical time of each step; the recording time for the others."""
    occurred = _BUILDERS.get(type(event).__name__)
    return event.timestamp if occurred is None else occurred[0](event)


def _day(value: date) -> datetime:
    return datetime.combine(value, time(), tzinfo=UTC)


def _fields(obj: Any) -> dict[str, Any]:
    return dict(obj.__dict__)


Builder = tuple[Callable[[Any], datetime], Callable[[Any, dict[str, Any]], EventData]]
_BUILDERS: dict[str, Builder] = {
    "LeukapheresisPerformed": (
        lambda e: _day(e.apheresis.performed_on),
        lambda e, c: contracts.LeukapheresisPerformedV1(**c, **_fields(e.apheresis)),
    ),
    "ProductReleased": (
        lambda e: _day(e.release.released_on),
        lambda e, c: contracts.ProductReleasedV1(**c, **_fields(e.release)),
    ),
    "LymphodepletionAdministered": (
        lambda e: _day(e.regimen.completed_on),
        lambda e, c: contracts.LymphodepletionAdministeredV1(
            **c,
            agents=[contracts.AgentDoseV1(**_fields(a)) for a in e.regimen.agents],
            started_on=e.regimen.started_on,
            completed_on=e.regimen.completed_on,
        ),
    ),
    "CarTInfused": (
        lambda e: e.infusion.started_at,
        lambda e, c: contracts.CarTInfusedV1(
            **c,
            dose_level=e.dose_level,
            weight_kg=e.infusion.weight_kg,
            lots=[contracts.InfusedLotV1(**_fields(lot)) for lot in e.infusion.lots],
            total_viable_car_positive_cells=sum(
                (lot.viable_car_positive_cells for lot in e.infusion.lots), Decimal(0)
            ),
            cells_per_kg_millions=e.cells_per_kg_millions,
            started_at=e.infusion.started_at,
            ended_at=e.infusion.ended_at,
            administered_by=e.infusion.administered_by,
            rule_version=e.rule_version,
        ),
    ),
    "InfusionNotGiven": (
        lambda e: e.timestamp,
        lambda e, c: contracts.InfusionNotGivenV1(**{**c, "reason": e.reason}),
    ),
    "InfusionInterrupted": (
        lambda e: e.timestamp,
        lambda e, c: contracts.InfusionInterruptedV1(**{**c, "reason": e.reason}),
    ),
}
