"""A local view of the infusion topic (see ``shared.adapters.subject_views``): when each subject
was infused, at which dose level (``shared.clinical``). Services that count study days keep one."""

from __future__ import annotations

from shared.adapters.subject_views import SubjectView
from shared.clinical import Infused, infused, infusion_facts
from shared.kernel.settings import DatabaseSettings


class InfusionView(SubjectView):
    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, "infusion_view", infusion_facts)

    async def infused(self, subject_id: str) -> Infused | None:
        facts = await self.facts(subject_id)
        return None if facts is None else infused(facts)

    async def all_infused(self) -> dict[str, Infused]:
        return {subject: infused(f) for subject, f in (await self.all_facts()).items()}
