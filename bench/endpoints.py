"""Endpoint computation: ``GET /endpoints`` and the swimmer plot against reading and
decoding the same ledger.

    python -m bench.endpoints [--entries 20000]

Subjects are followed up by the real assessments code (in memory): a baseline and four
visits, two signed responses, four CAR-T samples, each event enveloped as the relay
publishes it, after a ``CarTInfused`` entry. Then, on a fresh ledger:

- baseline: read every payload in position order and ``json.loads`` it (``bench.rebuild``);
- endpoints, first request: ``ProjectionsApplication.endpoints`` on a fresh application
  (reads and parses every entry into its kept history, computes every figure);
- endpoints, next request: the same call again (reads the entries since: none);
- endpoints as of the last position: a replay of every entry, as any "as of" is;
- swimmer plot: ``ProjectionsApplication.plot("swimmer")`` (kept history, matplotlib).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import Measurement, timed
from bench.rebuild import ledger_benchmark, read_and_decode
from services.assessments.application import AssessmentsApplication
from services.assessments.domain import VitalStatus
from services.assessments.laboratory import Method, Sample, Target, kinetics_sample
from services.assessments.publication import to_contract
from services.assessments.rules import Activity, Response, SledaiItem
from services.projections.application import ProjectionsApplication
from services.projections.ledger import LedgerStore
from shared.clinical import Infused
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Meaning, Role
from tests.support import NOW, SIGNER, command, principal, signing

EVENTS_PER_SUBJECT = 15  # infusion, opening, 5 visits, 2 responses + 2 signatures, 4 samples
INFUSED_AT = NOW - timedelta(days=200)
ALIVE = VitalStatus()


def followed_up(count: int) -> list[CloudEvent]:
    """About ``count`` published events of ``count // 15`` subjects."""
    app = AssessmentsApplication(signer=SIGNER, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    events = []
    for n in range(1, count // EVENTS_PER_SUBJECT + 1):
        subject = f"B-{n:07d}"
        events.append(_infusion(subject))
        _follow_up(app, subject)
    notifications = app.recorder.select_notifications(start=1, limit=count)
    by_subject: dict[str | None, list[CloudEvent]] = {}
    for note in notifications:
        event = CloudEvent.wrap(to_contract(app.mapper.to_domain_event(note)), note.id)
        by_subject.setdefault(event.subject, []).append(event)
    return [e for infusion in events for e in (infusion, *by_subject[infusion.subject])]


def _infusion(subject: str) -> CloudEvent:
    data = {"record_id": str(uuid.uuid4()), "version": 7, "started_at": INFUSED_AT.isoformat(),
            "dose_level": 2}  # fmt: skip
    return CloudEvent(
        id=uuid.uuid4(), source="/trial-ledger/infusion", type="CarTInfused.v1",
        subject=subject, time=INFUSED_AT, recordedtime=INFUSED_AT, sequence="1",
        correlationid="bench", data=data,
    )  # fmt: skip


def _follow_up(app: AssessmentsApplication, subject: str) -> None:
    infused = Infused(INFUSED_AT, 2)

    def at(days: int) -> datetime:
        return INFUSED_AT + timedelta(days=days)

    active = Activity(frozenset({SledaiItem.ARTHRITIS, SledaiItem.RASH}), Decimal(2),
                      Decimal(10), True)  # fmt: skip
    quiet = Activity(frozenset(), Decimal("0.2"), Decimal(5), True)
    for day, visit in ((-2, active), (28, quiet), (90, quiet), (120, quiet), (180, quiet)):
        app.assess_activity(subject, infused, ALIVE, f"day {day}", visit, at(day), command())
    record = app.get(subject)
    for visit_id in list(record.visits)[1:3]:
        app.assess_remission(subject, ALIVE, visit_id, Response.COMPLETE, command(),
                             signing(Meaning.APPROVAL))  # fmt: skip
    for day, value in ((7, "5000"), (14, "20000"), (28, "800"), (90, "30")):
        sample = kinetics_sample(Sample.PERIPHERAL_BLOOD, Method.QPCR, Target.TOTAL,
                                 Decimal(value), "copies/ug gDNA", Decimal(50))  # fmt: skip
        app.measure_kinetics(subject, infused, ALIVE, sample, at(day), command())


async def measure(ledger: LedgerStore, count: int) -> tuple[Measurement, list[Measurement]]:
    app = ProjectionsApplication(ledger, [Ed25519PrivateKey.generate().public_key()])
    auditor = principal(Role.AUDITOR, user_id="bench")
    base = await timed("baseline: read + json.loads", count, lambda: read_and_decode(ledger.pool))
    first = await timed("endpoints, first request (replays all)", count,
                        lambda: app.endpoints(auditor))  # fmt: skip
    kept = await timed("endpoints, next request (kept state)", count,
                       lambda: app.endpoints(auditor))  # fmt: skip
    as_of = await timed("endpoints as of the last position (replay)", count,
                        lambda: app.endpoints(auditor, position=count))  # fmt: skip
    swimmer = await timed("swimmer plot (kept state, matplotlib)", count,
                          lambda: app.plot(auditor, "swimmer"))  # fmt: skip
    return base, [first, kept, as_of, swimmer]


if __name__ == "__main__":
    ledger_benchmark(
        "endpoints",
        __doc__ or "",
        lambda count: f"following up {count // EVENTS_PER_SUBJECT} subjects (~{count} events)",
        followed_up,
        measure,
    )
