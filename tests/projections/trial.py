"""A small CAR-T trial's ledger made by the real services' code (no I/O): one subject
enrolled, signed and corrected (enrollment), treated (infusion), with a graded, signed,
adjudicated and resolved CRS (adverse events) and followed up (assessments), each
service's events as its relay would publish them, in the order the clinic made them.
For the regulators' exports (ODM, SDTM)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.domain import (
    CAUSALITY_SIGNATURE,
    DLT_SIGNATURE,
    GRADE_SIGNATURE,
    Infused,
    Relatedness,
    Seriousness,
    grading_of,
)
from services.adverse_events.grading import CrsInputs, Hypotension, Oxygen
from services.adverse_events.publication import PUBLICATION as AE_PUBLICATION
from services.projections.recorded import RecordedEvent
from shared.kernel.envelope import CloudEvent
from tests.assessments.test_publication import published as assessments_published
from tests.infusion.test_publication import published as infusion_published
from tests.projections.conftest import published_events
from tests.support import MEMORY, NOW, SIGNER, as_published, command, signing

INFUSED_AT = NOW  # tests.infusion's infusion starts at NOW
GRADE_2_CRS = CrsInputs(Decimal("39.0"), False, Hypotension.NO_VASOPRESSOR, Oxygen.NONE)


def adverse_event_events(subject_id: str = "S-001") -> list[CloudEvent]:
    """A CRS on day 2: graded by ASTCT, serious (hospitalised), probably related to the
    CAR-T, adjudicated no DLT, resolved on day 9."""
    app = AdverseEventsApplication(signer=SIGNER, env=MEMORY)
    onset = INFUSED_AT + timedelta(days=2)
    at = command(onset + timedelta(hours=1))
    record = app.report(subject_id, Infused(INFUSED_AT, 1), "Cytokine release syndrome",
                        "fever 39.0 C with hypotension", "10052015", onset, at)  # fmt: skip
    crs = grading_of("Cytokine release syndrome", None, None, crs=GRADE_2_CRS)
    app.grade(record.id, crs, at, signing(GRADE_SIGNATURE))
    app.assess_seriousness(record.id, Seriousness(False, False, True, False, False, False), at)
    app.assess_causality(record.id, Relatedness.PROBABLE, Relatedness.UNLIKELY, at,
                         signing(CAUSALITY_SIGNATURE))  # fmt: skip
    app.adjudicate_dlt(record.id, False, None, "grade 2 CRS resolved within 7 days", at,
                       signing(DLT_SIGNATURE))  # fmt: skip
    later = command(onset + timedelta(days=8))
    app.resolve(record.id, (onset + timedelta(days=7)).date(), "recovered", later)
    return as_published(app, AE_PUBLICATION)


def trial_events() -> list[CloudEvent]:
    """S-001 through enrollment, infusion, a CRS, visits, an autoantibody panel, CAR-T
    kinetics, a signed complete remission and a flare; S-002 enrolled, not yet infused.
    (tests.assessments dates its visits from its own infusion, 60 days earlier.)"""
    return [*published_events(subjects=2), *infusion_published("S-001"),
            *adverse_event_events(), *assessments_published("S-001")]  # fmt: skip


def ledgered(events: list[CloudEvent]) -> list[tuple[int, RecordedEvent]]:
    """The events as the ledger holds them: published JSON read back, positions 1, 2 ..."""
    return [
        (position, RecordedEvent.of(event.model_dump_json().encode()))
        for position, event in enumerate(events, start=1)
    ]
