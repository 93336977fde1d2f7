"""The infusion service's local view of enrolment, from the enrollment topic
(see ``shared.adapters.subject_views`` for its delivery and replay guarantees)."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker

from services.infusion.domain import Enrolment
from shared.adapters.subject_views import SubjectView, subscribe
from shared.contracts.enrollment import (
    SUBJECT_STATUS,
)
from shared.kernel.envelope import CloudEvent
from shared.kernel.settings import DatabaseSettings

GROUP_ID = "trialledger-infusion-enrolment-view"


def enrolment_facts(event: CloudEvent) -> dict[str, Any] | None:
    status = SUBJECT_STATUS.get(event.type)
    if status is None:
        return None  # signatures, corrections, denials: not about enrolment
    facts: dict[str, Any] = {"status": status}
    if "dose_level" in event.data:
        facts["dose_level"] = event.data["dose_level"]
    return facts


class EnrolmentView(SubjectView):
    """Who is enrolled, at which dose level, and who was withdrawn."""

    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "enrolment_view", enrolment_facts)

    async def enrolment(self, subject_id: str) -> Enrolment:
        facts = await self.facts(subject_id)
        if facts is None:
            return Enrolment("unknown", None)
        return Enrolment(facts["status"], facts.get("dose_level"))


def create_subscriptions(bootstrap: str, enrollment_topic: str, view: EnrolmentView) -> KafkaBroker:
    broker = KafkaBroker(bootstrap)
    subscribe(broker, enrollment_topic, GROUP_ID, view)
    return broker
