"""The adverse-events service's local view of infusions, from the infusion topic
(see ``shared.subject_views``): when each subject was infused, at which dose level."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker

from services.adverse_events.domain import Infused
from shared.envelope import CloudEvent
from shared.settings import DatabaseSettings
from shared.subject_views import SubjectView, subscribe

GROUP_ID = "trialledger-adverse-events-infusion-view"


def infusion_facts(event: CloudEvent) -> dict[str, Any] | None:
    if event.type != "CarTInfused.v1":
        return None
    return {"infused_at": event.data["started_at"], "dose_level": event.data["dose_level"]}


class InfusionView(SubjectView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "infusion_view", infusion_facts)

    async def infused(self, subject_id: str) -> Infused | None:
        facts = await self.facts(subject_id)
        if facts is None:
            return None
        return Infused(datetime.fromisoformat(facts["infused_at"]), int(facts["dose_level"]))

    async def all_infused(self) -> dict[str, Infused]:
        return {
            subject: Infused(datetime.fromisoformat(f["infused_at"]), int(f["dose_level"]))
            for subject, f in (await self.all_facts()).items()
        }


def create_subscriptions(bootstrap: str, infusion_topic: str, view: InfusionView) -> KafkaBroker:
    broker = KafkaBroker(bootstrap)
    subscribe(broker, infusion_topic, GROUP_ID, view)
    return broker
