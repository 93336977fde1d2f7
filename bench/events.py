"""Realistic payloads: enrollment events made by the real enrollment code, as published.

An in-memory ``EnrollmentApplication`` runs each subject through registration, consent,
screening, two corrections, eligibility and enrollment (nine events, signatures
included); every event is enveloped as the enrollment relay publishes it. Subjects are
distinct, so every event has its own ``event_id`` (the CloudEvent ``id``).
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import to_contract
from services.enrollment.rules import Observation
from services.projections.ledger import NewEntry
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Meaning
from tests.support import SIGNER, command, consent, eligible_observations, screening, signing

EVENTS_PER_SUBJECT = 9


def enrollment_events(count: int) -> list[CloudEvent]:
    """``count`` published events of ``ceil(count / 9)`` subjects, in publication order."""
    app = EnrollmentApplication(signer=SIGNER, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    subjects = -(-count // EVENTS_PER_SUBJECT)
    for n in range(1, subjects + 1):
        _one_subject(app, f"B-{n:07d}")
    notifications = app.recorder.select_notifications(start=1, limit=count)
    events = [
        CloudEvent.wrap(to_contract(app.mapper.to_domain_event(n)), n.id) for n in notifications
    ]
    if len(events) != count or len({e.id for e in events}) != count:
        raise RuntimeError(f"made {len(events)} events, expected {count} with distinct ids")
    return events


def _one_subject(app: EnrollmentApplication, subject: str) -> None:
    app.register_subject(subject, "ZJU-1", command())
    app.sign_consent(subject, consent(), command(), signing(Meaning.RESPONSIBILITY))
    app.record_screening(subject, screening(), command())
    steroid = eligible_observations()["systemic_steroids"]
    dated = Observation(date(2026, 10, 1), steroid.observed_on)
    app.correct_value(subject, "screening.systemic_steroids", dated, "found in notes", command())
    app.correct_value(subject, "screening.systemic_steroids", steroid, "wrong patient", command())
    app.decide_eligibility(subject, command(), signing(Meaning.APPROVAL))
    app.enrol(subject, 1, command())


def new_entry(event: CloudEvent, topic: str, partition: int, offset: int) -> NewEntry:
    """The ledger entry ``parse`` makes of this event's record (same fields)."""
    return NewEntry(
        event_id=event.id,
        source=event.source,
        event_type=event.type,
        subject_id=event.subject,
        record_id=UUID(str(event.data["record_id"])),
        record_version=int(event.data["version"]),
        occurred_at=event.time,
        recorded_at=event.recordedtime,
        topic=topic,
        partition=partition,
        offset=offset,
        payload=event.to_kafka_value(),
    )
