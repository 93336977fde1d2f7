"""The infusion application: command methods over a subject's treatment record.

Enrollment is passed in by the caller, as the local enrollment view knows it; the
infusion is signed like enrollment's signed steps (the signature covers the published
form of the event and is saved with it).

Every command acts in the caller's study (``Attribution.provenance.study_id``): the
treatment's record id is in that study's namespace, the rules are its definition's
(``InfusionRules.of``; the first study's may be overridden by the operator), and its
facts (infusions counted by dose level, places in cohorts) are keyed by study
(``record_key``: the first study's as they always were).
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
    treatment_namespace,
)
from services.infusion.publication import to_contract
from services.infusion.rules import InfusionRules
from shared.adapters.eventstore import ServiceApplication
from shared.adapters.facts import Fact
from shared.clinical import CohortOpening
from shared.kernel.provenance import Attribution
from shared.kernel.signatures import RecordSigner
from shared.study import DEFAULT_STUDY_ID, acting_study, record_key, study_definition
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
        self.rules = rules or InfusionRules()  # the first study's, as configured
        self._rules: dict[str, InfusionRules] = {self.rules.study_id: self.rules}

    def rules_of(self, study_id: str) -> InfusionRules:
        """The infusion rules of ``study_id``: its definition's, read once."""
        rules = self._rules.get(study_id)
        if rules is None:
            rules = self._rules[study_id] = InfusionRules.of(study_definition(study_id))
        return rules

    def record_leukapheresis(
        self,
        subject_id: str,
        enrollment: Enrollment,
        apheresis: Leukapheresis,
        attribution: Attribution,
    ) -> Treatment:
        """Leukapheresis: the first step of an enrolled subject's treatment, once."""
        namespace = treatment_namespace(study_definition(acting_study(attribution.provenance)))
        return self.save_new(
            Treatment.begin(subject_id, enrollment, apheresis, attribution, namespace),
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
        return self._change(
            subject_id, attribution, lambda t: t.release(enrollment, release, attribution)
        )

    def record_lymphodepletion(
        self,
        subject_id: str,
        enrollment: Enrollment,
        regimen: Lymphodepletion,
        attribution: Attribution,
    ) -> Treatment:
        return self._change(
            subject_id, attribution, lambda t: t.deplete(enrollment, regimen, attribution)
        )

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

        study_id = acting_study(attribution.provenance)
        rules = self.rules_of(study_id)

        def infuse(treatment: Treatment) -> None:
            dosed = self.dosed_since(cohort, study_id)
            treatment.infuse(enrollment, infusion, rules, attribution, cohort, dosed)

        return self._change(
            subject_id,
            attribution,
            self.decided_and_signed(infuse, signing, attribution, to_contract),
        )

    def dosed_since(self, cohort: CohortOpening, study_id: str = DEFAULT_STUDY_ID) -> int:
        """Infusions of ``study_id`` at the cohort's level recorded since its safety review."""
        level = record_key(study_id, str(cohort.level))
        return self.facts.count_facts(INFUSED, level, after=cohort.opened_at)

    def facts_of(self, event: Any) -> Iterable[Fact]:
        """An infusion is counted in its study's dose level's cohort (``dosed_since``); keys
        and groups are per study (``record_key``: the first study's as they always were)."""
        if type(event) in self.fact_events:  # (isinstance would type it as a bare Event)
            study_id = event.provenance.study_id  # None: stored before studies, the first's
            level = record_key(study_id, str(event.dose_level))
            subject = record_key(study_id, event.subject_id)
            yield Fact(INFUSED, subject, level, event.timestamp)
            place = getattr(event, "cohort_place", "")  # infusions stored before have none
            if place:  # taken once: a second claim refuses its whole save
                place = record_key(study_id, place)
                yield Fact(COHORT_PLACE, place, level, event.timestamp, claim=True)

    def decline_infusion(self, subject_id: str, reason: str, attribution: Attribution) -> Treatment:
        return self._change(subject_id, attribution, lambda t: t.decline(reason, attribution))

    def interrupt_infusion(
        self, subject_id: str, reason: str, attribution: Attribution
    ) -> Treatment:
        return self._change(subject_id, attribution, lambda t: t.interrupt(reason, attribution))

    def get_treatment(self, subject_id: str, study_id: str = DEFAULT_STUDY_ID) -> Treatment:
        """The treatment record of a subject of ``study_id``."""
        treatment: Treatment = self.load(
            treatment_id(subject_id, treatment_namespace(study_definition(study_id))),
            lambda: errors.LeukapheresisRequired(
                f"subject {subject_id} has no leukapheresis recorded", subject_id=subject_id
            ),
        )
        return treatment

    def _change(
        self, subject_id: str, attribution: Attribution, decide: Callable[[Treatment], None]
    ) -> Treatment:
        study_id = acting_study(attribution.provenance)
        return self.saved_with_retry(
            lambda: self.get_treatment(subject_id, study_id),
            decide,
            lambda: errors.ConcurrentChange(f"treatment of {subject_id} kept changing; retry"),
        )
