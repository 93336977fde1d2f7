"""The infusion application: command methods over a subject's treatment record.

Enrollment is passed in by the caller, as the local enrollment view knows it; the
infusion is signed like enrollment's signed steps (the signature covers the published
form of the event and is saved with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from services.infusion import errors
from services.infusion.domain import (
    Enrollment,
    Infusion,
    Leukapheresis,
    Lymphodepletion,
    ProductRelease,
    Treatment,
    treatment_id,
)
from services.infusion.publication import to_contract
from services.infusion.rules import InfusionRules
from shared.adapters.eventstore import ServiceApplication
from shared.adapters.facts import Fact
from shared.clinical import CohortOpening
from shared.kernel.provenance import Attribution
from shared.kernel.signatures import RecordSigner
from shared.web.auth import SigningAssertion

INFUSED = "infused"  # the fact of an infusion, by subject, counted by dose level
COHORT_PLACE = "cohort_place"  # a place in a cohort a review opened, taken by one infusion


class InfusionApplication(ServiceApplication):
    """Commands of the infusion service; each loads, decides and saves one treatment."""

    name = "infusion"
    records = (Treatment,)
    fact_events = (Treatment.CarTInfused,)

    def __init__(
        self,
        env: dict[str, str] | None = None,
        signer: RecordSigner | None = None,
        rules: InfusionRules | None = None,
    ) -> None:
        super().__init__(env=env, signer=signer)
        self.rules = rules or InfusionRules()

    def record_leukapheresis(
        self,
        subject_id: str,
        enrollment: Enrollment,
        apheresis: Leukapheresis,
        attribution: Attribution,
    ) -> Treatment:
        """Leukapheresis: the first step of an enrolled subject's treatment, once."""
        return self.save_new(
            Treatment.begin(subject_id, enrollment, apheresis, attribution),
            lambda: errors.AlreadyDone(
                f"subject {subject_id} already had leukapheresis", subject_id=subject_id
            ),
        )

    def release_product(
        self,
        subject_id: str,
        enrollment: Enrollment,
        release: ProductRelease,
        attribution: Attribution,
    ) -> Treatment:
        return self._change(subject_id, lambda t: t.release(enrollment, release, attribution))

    def record_lymphodepletion(
        self,
        subject_id: str,
        enrollment: Enrollment,
        regimen: Lymphodepletion,
        attribution: Attribution,
    ) -> Treatment:
        return self._change(subject_id, lambda t: t.deplete(enrollment, regimen, attribution))

    def infuse(
        self,
        subject_id: str,
        enrollment: Enrollment,
        infusion: Infusion,
        attribution: Attribution,
        signing: SigningAssertion,
        cohort: CohortOpening,
    ) -> Treatment:
        """Record the CAR-T infusion, signed by the person who administered it. The subject
        takes the next place of its cohort, a claim saved with the infusion: of two
        infusions counted at the same moment, the second to save finds its place taken, is
        decided again on the new count, and is refused if the cohort is full."""

        def infuse(treatment: Treatment) -> None:
            dosed = self.dosed_since(cohort)
            treatment.infuse(enrollment, infusion, self.rules, attribution, cohort, dosed)

        return self._change(
            subject_id, self.decided_and_signed(infuse, signing, attribution, to_contract)
        )

    def dosed_since(self, cohort: CohortOpening) -> int:
        """Infusions at the cohort's level recorded since its safety review."""
        return self.facts.count_facts(INFUSED, str(cohort.level), after=cohort.opened_at)

    def facts_of(self, event: Any) -> Iterable[Fact]:
        """An infusion is counted in its dose level's cohort (``dosed_since``)."""
        if type(event) in self.fact_events:  # (isinstance would type it as a bare Event)
            yield Fact(INFUSED, event.subject_id, str(event.dose_level), event.timestamp)
            place = getattr(event, "cohort_place", "")  # infusions stored before have none
            if place:  # taken once: a second claim refuses its whole save
                level = str(event.dose_level)
                yield Fact(COHORT_PLACE, place, level, event.timestamp, claim=True)

    def decline_infusion(self, subject_id: str, reason: str, attribution: Attribution) -> Treatment:
        return self._change(subject_id, lambda t: t.decline(reason, attribution))

    def interrupt_infusion(
        self, subject_id: str, reason: str, attribution: Attribution
    ) -> Treatment:
        return self._change(subject_id, lambda t: t.interrupt(reason, attribution))

    def get_treatment(self, subject_id: str) -> Treatment:
        treatment: Treatment = self.load(
            treatment_id(subject_id),
            lambda: errors.LeukapheresisRequired(
                f"subject {subject_id} has no leukapheresis recorded", subject_id=subject_id
            ),
        )
        return treatment

    def _change(self, subject_id: str, decide: Callable[[Treatment], None]) -> Treatment:
        return self.saved_with_retry(
            lambda: self.get_treatment(subject_id),
            decide,
            lambda: errors.ConcurrentChange(f"treatment of {subject_id} kept changing; retry"),
        )
