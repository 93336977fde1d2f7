"""The infusion service's local view of enrollment, from the enrollment topic
(see ``shared.adapters.subject_views`` for its delivery and replay guarantees)."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker

from services.infusion.domain import Enrollment
from shared.adapters.subject_views import SubjectView, kafka_broker, subscribe
from shared.contracts.enrollment import SUBJECT_STATUS
from shared.kernel.envelope import CloudEvent
from shared.kernel.settings import DatabaseSettings
from shared.study import DEFAULT_STUDY_ID

GROUP_ID = "trialledger-infusion-enrollment-view"


def enrollment_facts(event: CloudEvent) -> dict[str, Any] | None:
    status = SUBJECT_STATUS.get(event.type)
    if status is None:
        return None  # signatures, corrections, denials: not about enrollment
    facts: dict[str, Any] = {"status": status}
    if "dose_level" in event.data:
        facts["dose_level"] = event.data["dose_level"]
    return facts


class EnrollmentView(SubjectView):
    """Who is enrolled, at which dose level, and who was withdrawn, per study (rows keyed
    by ``record_key(study, subject)``, as the enrollment topic's records)."""

    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "enrollment_view", enrollment_facts)

    async def enrollment(self, subject_id: str, study_id: str = DEFAULT_STUDY_ID) -> Enrollment:
        """A subject's enrollment in ``study_id`` (``subject_id`` may be its record key)."""
        facts = await self.facts(subject_id, study_id)
        if facts is None:
            return Enrollment("unknown", None)
        return Enrollment(facts["status"], facts.get("dose_level"))


def create_subscriptions(
    bootstrap: str, enrollment_topic: str, view: EnrollmentView
) -> KafkaBroker:
    broker = kafka_broker(bootstrap)
    subscribe(broker, enrollment_topic, GROUP_ID, view)
    return broker
