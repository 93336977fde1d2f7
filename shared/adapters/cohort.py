"""The latest safety-review approval, as the services that dose or enrol follow it
(a trial-fact view of the adverse-events topic; see ``shared.adapters.subject_views``; the
rule itself is ``shared.clinical``)."""

from __future__ import annotations

from shared.adapters.subject_views import TrialFactView
from shared.clinical import CohortOpening, approval_facts, cohort_opening
from shared.kernel.settings import DatabaseSettings


class CohortView(TrialFactView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "cohort_view", approval_facts)

    async def opening(self) -> CohortOpening:
        return cohort_opening(await self.facts())
