"""The adverse-events application: command methods over adverse-event records.

Grade, regrade, causality and DLT adjudication are signed (the signature covers the
published form of the event and is saved with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache
from typing import Any
from uuid import UUID

from services.adverse_events import errors
from services.adverse_events.dlt import DltCriterion
from services.adverse_events.domain import (
    AdverseEvent,
    Grading,
    Infused,
    Relatedness,
    SafetyReview,
    Seriousness,
    StudyRules,
)
from services.adverse_events.escalation import (
    CohortState,
    CohortSubject,
    Decision,
    Expansion,
    decide,
)
from services.adverse_events.publication import to_contract
from services.adverse_events.windows import dlt_window_closed
from shared.adapters.eventstore import ServiceApplication
from shared.adapters.facts import Fact
from shared.kernel.provenance import Attribution, Provenance
from shared.study import DEFAULT_STUDY_ID, acting_study, record_key, study_definition
from shared.web.auth import SigningAssertion

# The facts kept as events are saved: each adverse event's latest DLT adjudication
# (grouped DLT or not), and each approved safety review (grouped by its decision), of
# kinds per study (``fact_kind``).
DLT, NOT_DLT, REVIEW = "dlt", "not_dlt", "review"


@cache
def study_rules(study_id: str) -> StudyRules:
    """The adverse-events rules of ``study_id``, from its definition, read once."""
    return StudyRules.of(study_definition(study_id))


def fact_kind(study_id: str, kind: str) -> str:
    """The kind of a study's facts: ``kind`` itself for the first study (as its facts
    were kept before studies were named), ``<study>/<kind>`` for another, so that one
    study's DLTs and reviews are never counted in another's."""
    return record_key(study_id, kind)


class AdverseEventsApplication(ServiceApplication):
    """Commands of the adverse-events service; each loads, decides and saves one event."""

    name = "adverse_events"
    records = (AdverseEvent, SafetyReview)
    fact_events = (AdverseEvent.DltAdjudicated, SafetyReview.SafetyReviewApproved)

    def report(
        self,
        subject_id: str,
        infused: Infused | None,
        term: str,
        verbatim: str,
        meddra_code: str | None,
        onset_at: datetime,
        attribution: Attribution,
    ) -> AdverseEvent:
        """Report an adverse event of an infused subject; returns its record."""
        if infused is None:
            raise errors.SubjectNotInfused(
                f"subject {subject_id} is not infused in the local infusion view; retry if "
                "the infusion was just recorded",
                subject_id=subject_id,
                retryable=True,
            )
        rules = study_rules(acting_study(attribution.provenance))
        record = AdverseEvent.report(
            subject_id, term, verbatim, meddra_code, onset_at, infused, attribution, rules
        )
        self.save(record)
        return record

    def grade(
        self, record_id: UUID, grading: Grading, attribution: Attribution, signing: SigningAssertion
    ) -> AdverseEvent:
        return self._signed(
            record_id, lambda r: r.grade(grading, attribution), attribution, signing
        )

    def regrade(
        self,
        record_id: UUID,
        grading: Grading,
        reason: str,
        attribution: Attribution,
        signing: SigningAssertion,
    ) -> AdverseEvent:
        decide = lambda r: r.regrade(grading, reason, attribution)  # noqa: E731
        return self._signed(record_id, decide, attribution, signing)

    def assess_seriousness(
        self, record_id: UUID, seriousness: Seriousness, attribution: Attribution
    ) -> AdverseEvent:
        decide = lambda r: r.assess_seriousness(seriousness, attribution)  # noqa: E731
        return self._change(record_id, decide, attribution)

    def assess_causality(
        self,
        record_id: UUID,
        car_t: Relatedness,
        lymphodepletion: Relatedness,
        attribution: Attribution,
        signing: SigningAssertion,
    ) -> AdverseEvent:
        decide = lambda r: r.assess_causality(car_t, lymphodepletion, attribution)  # noqa: E731
        return self._signed(record_id, decide, attribution, signing)

    def adjudicate_dlt(
        self,
        record_id: UUID,
        is_dlt: bool,
        criterion: DltCriterion | None,
        reason: str,
        attribution: Attribution,
        signing: SigningAssertion,
    ) -> AdverseEvent:
        rules = study_rules(acting_study(attribution.provenance))
        decide = lambda r: r.adjudicate_dlt(is_dlt, criterion, reason, attribution, rules)  # noqa: E731
        return self._signed(record_id, decide, attribution, signing)

    def resolve(
        self, record_id: UUID, ended_on: date, outcome: str, attribution: Attribution
    ) -> AdverseEvent:
        decide = lambda r: r.resolve(ended_on, outcome, attribution)  # noqa: E731
        return self._change(record_id, decide, attribution)

    def facts_of(self, event: Any) -> Iterable[Fact]:
        """An adverse event's latest DLT adjudication (a later one replaces it), and each
        approved safety review by its decision."""
        kind = type(event)  # (isinstance would type it as a bare Event)
        if kind not in (AdverseEvent.DltAdjudicated, SafetyReview.SafetyReviewApproved):
            return
        provenance: Provenance = event.provenance  # both kinds carry it
        study = acting_study(provenance)
        if kind is AdverseEvent.DltAdjudicated:
            group = DLT if event.is_dlt else NOT_DLT
            subject = {"subject_id": event.subject_id}
            yield Fact(
                fact_kind(study, DLT), str(event.originator_id), group, event.timestamp, subject
            )
        elif kind is SafetyReview.SafetyReviewApproved:
            reviewed_at = (event.reviewed_at or event.timestamp).isoformat()
            opened = {"level": event.approved_level, "size": event.cohort_size,
                      "reviewed_at": reviewed_at}  # fmt: skip
            yield Fact(
                fact_kind(study, REVIEW), str(event.review_number), event.decision,
                event.timestamp, opened,
            )  # fmt: skip

    def dlt_subjects(self, study_id: str = DEFAULT_STUDY_ID) -> set[str]:
        """Subjects of the study with at least one adverse event whose latest
        adjudication is a DLT."""
        return {
            fact.value["subject_id"] for fact in self.facts.facts(fact_kind(study_id, DLT), DLT)
        }

    def reviews_so_far(self, study_id: str = DEFAULT_STUDY_ID) -> int:
        """The safety reviews approved in the study."""
        return self.facts.count_facts(fact_kind(study_id, REVIEW))

    def approve_safety_review(
        self,
        review_number: int,
        approved_level: int,
        infused: dict[str, Infused],
        attribution: Attribution,
        signing: SigningAssertion,
        reviewed_at: datetime | None = None,
        dose_expansion: bool = False,
    ) -> SafetyReview:
        """Approve review ``review_number`` (the one the signer signed for), opening the
        next cohort at ``approved_level``, if the 3+3 state at the review's clinical time
        (default: now) allows it; once per number. With ``dose_expansion``, the cohort is
        the dose-expansion cohort at that level (the design's expansion total). All in
        the study the caller acts in, by its rules; ``infused`` are that study's subjects."""
        study = acting_study(attribution.provenance)
        when = reviewed_at or attribution.now
        if when > attribution.now:
            raise errors.InvalidTime(
                "a safety review cannot take place later than the server clock"
            )
        state = self.cohort(
            {s: i for s, i in infused.items() if i.infused_at <= when}, when, study
        )  # as it stood at the review: infusions after it are not its cohort's
        approve = SafetyReview.approve_expansion if dose_expansion else SafetyReview.approve
        review = approve(
            state, approved_level, review_number, attribution, when, study_rules(study)
        )
        review.sign(self.sign_last_decision(review, signing, attribution, to_contract), attribution)
        return self.save_new(
            review,
            lambda: errors.ReviewAlreadyApproved(
                f"safety review {review_number} is approved already; sign the next one",
                review=review_number,
            ),
        )

    def expansion(self, study_id: str = DEFAULT_STUDY_ID) -> Expansion | None:
        """The dose-expansion cohort a signed review of the study opened, if one did."""
        for fact in self.facts.facts(fact_kind(study_id, REVIEW), Decision.DOSE_EXPANSION.value):
            opened = fact.value
            reviewed_at = datetime.fromisoformat(opened["reviewed_at"])
            return Expansion(opened["level"], reviewed_at, opened["size"])
        return None

    def cohort(
        self, infused: dict[str, Infused], now: datetime, study_id: str = DEFAULT_STUDY_ID
    ) -> CohortState:
        """The 3+3 state of a study by its design, from its infusions the view knows
        (``infused``, by subject id) and its DLTs adjudicated here (and its dose-expansion
        cohort, once a review opened it)."""
        rules = study_rules(study_id)
        dlts = self.dlt_subjects(study_id)
        subjects = [
            CohortSubject(
                subject_id=subject,
                dose_level=i.dose_level,
                infused_at=i.infused_at,
                dlt=subject in dlts,
                window_closed=dlt_window_closed(i.infused_at, now, rules.calendar),
            )
            for subject, i in sorted(infused.items(), key=lambda item: item[1].infused_at)
        ]
        return decide(subjects, expansion=self.expansion(study_id), design=rules.design)

    def get(self, record_id: UUID, study_id: str | None = None) -> AdverseEvent:
        """The adverse event ``record_id``; with ``study_id``, only if it is that study's
        (another study's event is not found there)."""

        def missing() -> Exception:
            return errors.AdverseEventNotFound(f"no adverse event {record_id}")

        record: AdverseEvent = self.load(record_id, missing)
        if study_id is not None and record.study_id != study_id:
            raise missing()
        return record

    def _signed(
        self,
        record_id: UUID,
        decide: Callable[[AdverseEvent], None],
        attribution: Attribution,
        signing: SigningAssertion,
    ) -> AdverseEvent:
        return self._change(
            record_id,
            self.decided_and_signed(decide, signing, attribution, to_contract),
            attribution,
        )

    def _change(
        self,
        record_id: UUID,
        decide: Callable[[AdverseEvent], None],
        attribution: Attribution,
    ) -> AdverseEvent:
        """``decide`` on the event, if it is of the study the caller acts in."""
        study = acting_study(attribution.provenance)
        return self.saved_with_retry(
            lambda: self.get(record_id, study),
            decide,
            lambda: errors.OutOfSequence(f"adverse event {record_id} kept changing; retry"),
        )
