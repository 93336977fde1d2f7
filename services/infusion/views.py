"""The infusion service's local view of enrolment, from the enrollment topic
(see ``shared.subject_views`` for its delivery and replay guarantees)."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker

from services.infusion.domain import Enrolment
from shared.contracts.enrollment import (
    ConsentSignedV1,
    EligibilityConfirmedV1,
    ScreenFailedV1,
    ScreeningResultRecordedV1,
    SubjectDiedV1,
    SubjectEnrolledV1,
    SubjectRegisteredV1,
    SubjectWithdrawnV1,
)
from shared.envelope import CloudEvent
from shared.settings import DatabaseSettings
from shared.subject_views import SubjectView, subscribe

GROUP_ID = "trialledger-infusion-enrolment-view"

# enrollment event type -> the status it leaves the subject in
STATUS = {
    SubjectRegisteredV1.event_type: "registered",
    ConsentSignedV1.event_type: "consented",
    ScreeningResultRecordedV1.event_type: "screened",
    EligibilityConfirmedV1.event_type: "eligible",
    ScreenFailedV1.event_type: "screen_failed",
    SubjectEnrolledV1.event_type: "enrolled",
    SubjectWithdrawnV1.event_type: "withdrawn",
    SubjectDiedV1.event_type: "died",
}


def enrolment_facts(event: CloudEvent) -> dict[str, Any] | None:
    status = STATUS.get(event.type)
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
