"""The latest safety-review approval, as the services that dose or enrol follow it
(a trial-fact view of the adverse-events topic; see ``shared.adapters.subject_views``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.adapters.subject_views import TrialFactView
from shared.contracts.adverse_events import SafetyReviewApprovedV1
from shared.kernel.envelope import CloudEvent
from shared.kernel.settings import DatabaseSettings


@dataclass(frozen=True)
class CohortOpening:
    """The level a safety review opened, how many subjects it may dose, and when."""

    level: int
    size: int
    opened_at: datetime
    review_number: int


# Before any review the first cohort is open: 3 subjects at level 1 (3+3).
FIRST_COHORT = CohortOpening(1, 3, datetime(1970, 1, 1, tzinfo=UTC), 0)


def approval_facts(event: CloudEvent) -> dict[str, Any] | None:
    if event.type != SafetyReviewApprovedV1.event_type:
        return None
    return {
        "level": event.data["approved_level"],
        "size": event.data["cohort_size"],
        "opened_at": event.recordedtime.isoformat(),
        "review_number": event.data["review_number"],
    }


class CohortView(TrialFactView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "cohort_view", approval_facts)

    async def opening(self) -> CohortOpening:
        facts = await self.facts()
        if facts is None:
            return FIRST_COHORT
        return CohortOpening(
            int(facts["level"]),
            int(facts["size"]),
            datetime.fromisoformat(facts["opened_at"]),
            int(facts["review_number"]),
        )
