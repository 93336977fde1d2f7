"""The latest safety-review approval, as the services that dose or enrol follow it
(a trial-fact view of the adverse-events topic; see ``shared.adapters.subject_views``; the
rule itself is ``shared.clinical``), per study."""

from __future__ import annotations

from shared.adapters.subject_views import TrialFactView
from shared.clinical import CohortOpening, approval_facts, cohort_opening
from shared.kernel.settings import DatabaseSettings
from shared.study import DEFAULT_STUDY_ID, study_definition


class CohortView(TrialFactView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "cohort_view", approval_facts)

    async def opening(self, study_id: str = DEFAULT_STUDY_ID) -> CohortOpening:
        """The cohort open now in ``study_id``: its latest approval's, else its first."""
        return cohort_opening(await self.facts(study_id), study_definition(study_id))
