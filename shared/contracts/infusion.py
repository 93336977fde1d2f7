"""Published events of the infusion service (topic ``trialledger.infusion.events``).

Units are in the field names; quantities are decimal strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from shared.contracts.security import AccessDeniedV1, RecordSignedV1, RecordSignedV2
from shared.kernel.envelope import Contract, EventData, ReasonGiven, contract_registry

RECORD_TYPE = "Treatment"


class LeukapheresisPerformedV1(EventData):
    event_type = "LeukapheresisPerformed.v1"
    performed_on: date
    volume_ml: Decimal


class ProductReleasedV1(EventData):
    event_type = "ProductReleased.v1"
    lot_id: str
    product: Literal["CD19", "BCMA", "CD19/BCMA"]
    car_positive_percent: Decimal
    viability_percent: Decimal
    sterility_passed: bool
    release_tests_passed: bool
    released_on: date


class AgentDoseV1(Contract):
    agent: str
    dose_mg_per_m2: Decimal
    days: int


class LymphodepletionAdministeredV1(EventData):
    event_type = "LymphodepletionAdministered.v1"
    agents: list[AgentDoseV1]
    started_on: date
    completed_on: date


class InfusedLotV1(Contract):
    lot_id: str
    viable_car_positive_cells: Decimal


class CarTInfusedV1(EventData):
    event_type = "CarTInfused.v1"
    dose_level: Literal[1, 2, 3, 4]
    weight_kg: Decimal
    lots: list[InfusedLotV1]
    total_viable_car_positive_cells: Decimal
    cells_per_kg_millions: Decimal = Field(description="x10^6 CAR-T cells per kg")
    started_at: datetime
    ended_at: datetime
    administered_by: str
    rule_version: str


class InfusionNotGivenV1(ReasonGiven):
    event_type = "InfusionNotGiven.v1"


class InfusionInterruptedV1(ReasonGiven):
    event_type = "InfusionInterrupted.v1"


INFUSION_CONTRACTS = contract_registry(
    LeukapheresisPerformedV1,
    ProductReleasedV1,
    LymphodepletionAdministeredV1,
    CarTInfusedV1,
    InfusionNotGivenV1,
    InfusionInterruptedV1,
)
__all__ = ["INFUSION_CONTRACTS", "AccessDeniedV1", "RecordSignedV1", "RecordSignedV2"]
