"""A local view of the infusion topic (see ``shared.adapters.subject_views``): when each subject
was infused, at which dose level. Services that count study days keep one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters.subject_views import SubjectView
from shared.clinical import Infused
from shared.contracts.infusion import CarTInfusedV1
from shared.kernel.envelope import CloudEvent
from shared.kernel.settings import DatabaseSettings


def infusion_facts(event: CloudEvent) -> dict[str, Any] | None:
    if event.type != CarTInfusedV1.event_type:
        return None
    return {"infused_at": event.data["started_at"], "dose_level": event.data["dose_level"]}


def _infused(facts: dict[str, Any]) -> Infused:
    return Infused(datetime.fromisoformat(facts["infused_at"]), int(facts["dose_level"]))


class InfusionView(SubjectView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "infusion_view", infusion_facts)

    async def infused(self, subject_id: str) -> Infused | None:
        facts = await self.facts(subject_id)
        return None if facts is None else _infused(facts)

    async def all_infused(self) -> dict[str, Infused]:
        return {subject: _infused(f) for subject, f in (await self.all_facts()).items()}
