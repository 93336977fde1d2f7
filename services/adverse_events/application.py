"""The adverse-events application: command methods over adverse-event records.

Grade, regrade, causality and DLT adjudication are signed (the signature covers the
published form of the event and is saved with it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
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
from shared.kernel.provenance import Attribution
from shared.web.auth import SigningAssertion

# The facts kept as events are saved: each adverse event's latest DLT adjudication
# (grouped DLT or not), and each approved safety review (grouped by its decision).
DLT, NOT_DLT, REVIEW = "dlt", "not_dlt", "review"


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
        record = AdverseEvent.report(
            subject_id, term, verbatim, meddra_code, onset_at, infused, attribution
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
        return self._change(record_id, lambda r: r.assess_seriousness(seriousness, attribution))

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
        decide = lambda r: r.adjudicate_dlt(is_dlt, criterion, reason, attribution)  # noqa: E731
        return self._signed(record_id, decide, attribution, signing)

    def resolve(
        self, record_id: UUID, ended_on: date, outcome: str, attribution: Attribution
    ) -> AdverseEvent:
        return self._change(record_id, lambda r: r.resolve(ended_on, outcome, attribution))

    def facts_of(self, event: Any) -> Iterable[Fact]:
        """An adverse event's latest DLT adjudication (a later one replaces it), and each
        approved safety review by its decision."""
        kind = type(event)  # (isinstance would type it as a bare Event)
        if kind is AdverseEvent.DltAdjudicated:
            group = DLT if event.is_dlt else NOT_DLT
            subject = {"subject_id": event.subject_id}
            yield Fact(DLT, str(event.originator_id), group, event.timestamp, subject)
        elif kind is SafetyReview.SafetyReviewApproved:
            reviewed_at = (event.reviewed_at or event.timestamp).isoformat()
            opened = {"level": event.approved_level, "size": event.cohort_size,
                      "reviewed_at": reviewed_at}  # fmt: skip
            yield Fact(REVIEW, str(event.review_number), event.decision, event.timestamp, opened)

    def dlt_subjects(self) -> set[str]:
        """Subjects with at least one adverse event whose latest adjudication is a DLT."""
        return {fact.value["subject_id"] for fact in self.facts.facts(DLT, DLT)}

    def reviews_so_far(self) -> int:
        return self.facts.count_facts(REVIEW)

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
        the dose-expansion cohort at that level (``escalation.EXPANSION_TOTAL_AT_LEVEL``)."""
        when = reviewed_at or attribution.now
        if when > attribution.now:
            raise errors.InvalidTime(
                "a safety review cannot take place later than the server clock"
            )
        state = self.cohort(
            {s: i for s, i in infused.items() if i.infused_at <= when}, when
        )  # as it stood at the review: infusions after it are not its cohort's
        approve = SafetyReview.approve_expansion if dose_expansion else SafetyReview.approve
        review = approve(state, approved_level, review_number, attribution, when)
        review.sign(self.sign_last_decision(review, signing, attribution, to_contract), attribution)
        return self.save_new(
            review,
            lambda: errors.ReviewAlreadyApproved(
                f"safety review {review_number} is approved already; sign the next one",
                review=review_number,
            ),
        )

    def expansion(self) -> Expansion | None:
        """The dose-expansion cohort a signed review opened, if one did."""
        for fact in self.facts.facts(REVIEW, Decision.DOSE_EXPANSION.value):
            opened = fact.value
            reviewed_at = datetime.fromisoformat(opened["reviewed_at"])
            return Expansion(opened["level"], reviewed_at, opened["size"])
        return None

    def cohort(self, infused: dict[str, Infused], now: datetime) -> CohortState:
        """The 3+3 state from every infusion the view knows and every DLT adjudicated here
        (and the dose-expansion cohort, once a review opened it)."""
        dlts = self.dlt_subjects()
        subjects = [
            CohortSubject(
                subject_id=subject,
                dose_level=i.dose_level,
                infused_at=i.infused_at,
                dlt=subject in dlts,
                window_closed=dlt_window_closed(i.infused_at, now),
            )
            for subject, i in sorted(infused.items(), key=lambda item: item[1].infused_at)
        ]
        return decide(subjects, expansion=self.expansion())

    def get(self, record_id: UUID) -> AdverseEvent:
        record: AdverseEvent = self.load(
            record_id, lambda: errors.AdverseEventNotFound(f"no adverse event {record_id}")
        )
        return record

    def _signed(
        self,
        record_id: UUID,
        decide: Callable[[AdverseEvent], None],
        attribution: Attribution,
        signing: SigningAssertion,
    ) -> AdverseEvent:
        return self._change(
            record_id, self.decided_and_signed(decide, signing, attribution, to_contract)
        )

    def _change(self, record_id: UUID, decide: Callable[[AdverseEvent], None]) -> AdverseEvent:
        return self.saved_with_retry(
            lambda: self.get(record_id),
            decide,
            lambda: errors.OutOfSequence(f"adverse event {record_id} kept changing; retry"),
        )
