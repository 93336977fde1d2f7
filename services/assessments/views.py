"""The assessments service's local views (``shared.adapters.subject_views``): when each subject
was infused (the study calendar), and when a subject was withdrawn or died (nothing is
assessed after that), from the infusion and enrollment topics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker

from services.assessments.domain import VitalStatus
from shared.adapters.infusion_view import InfusionView
from shared.adapters.subject_views import SubjectView, kafka_broker, subscribe
from shared.contracts.enrollment import SubjectDiedV1, SubjectWithdrawnV1
from shared.kernel.envelope import CloudEvent
from shared.kernel.settings import DatabaseSettings

__all__ = ["InfusionView", "VitalStatusView", "create_subscriptions"]

INFUSION_GROUP = "trialledger-assessments-infusion-view"
ENROLLMENT_GROUP = "trialledger-assessments-vital-status-view"
_VITAL = {SubjectWithdrawnV1.event_type: "withdrawn_at", SubjectDiedV1.event_type: "died_at"}


def vital_facts(event: CloudEvent) -> dict[str, Any] | None:
    name = _VITAL.get(event.type)
    return None if name is None else {name: event.time.isoformat()}


class VitalStatusView(SubjectView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "vital_status_view", vital_facts)

    async def vital_status(self, subject_id: str) -> VitalStatus:
        facts = await self.facts(subject_id) or {}
        withdrawn, died = facts.get("withdrawn_at"), facts.get("died_at")
        return VitalStatus(
            None if withdrawn is None else datetime.fromisoformat(withdrawn),
            None if died is None else datetime.fromisoformat(died),
        )


def create_subscriptions(
    bootstrap: str,
    topics: tuple[str, str],
    infusion: InfusionView,
    vital: VitalStatusView,
) -> KafkaBroker:
    """One broker feeding both views: ``topics`` is (infusion topic, enrollment topic)."""
    broker = kafka_broker(bootstrap)
    subscribe(broker, topics[0], INFUSION_GROUP, infusion)
    subscribe(broker, topics[1], ENROLLMENT_GROUP, vital)
    return broker
