"""A local view of the infusion topic (see ``shared.adapters.subject_views``): when each subject
was infused, at which dose level (``shared.clinical``). Services that count study days keep one.
Rows are per study (``record_key``): readers name the study, the first study's by default."""

from __future__ import annotations

from shared.adapters.subject_views import SubjectView
from shared.clinical import Infused, infused, infusion_facts
from shared.kernel.settings import DatabaseSettings
from shared.study import DEFAULT_STUDY_ID


class InfusionView(SubjectView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "infusion_view", infusion_facts)

    async def infused(self, subject_id: str, study_id: str = DEFAULT_STUDY_ID) -> Infused | None:
        """When a subject of ``study_id`` was infused (``subject_id`` may be its record key)."""
        facts = await self.facts(subject_id, study_id)
        return None if facts is None else infused(facts)

    async def all_infused(self, study_id: str = DEFAULT_STUDY_ID) -> dict[str, Infused]:
        """Every infused subject of ``study_id``, by subject id."""
        facts = await self.all_facts(study_id)
        return {subject: infused(f) for subject, f in facts.items()}
