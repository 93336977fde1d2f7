"""An adverse event's record: report, grade, regrade, seriousness, causality, DLT, resolution.

Decide, then record. When the subject was infused comes in as ``Infused`` (from the
local view of the infusion topic); study day, treatment emergence and the DLT window are
derived at report time and stored with the rule version that derived them and the
study-day convention the day is counted in (reports stored before conventions were named
carry none: their day was counted with the infusion as day 1, ``shared.clinical``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from services.adverse_events import errors
from services.adverse_events import windows as rules_windows
from services.adverse_events.dlt import Course, DltCriterion, DltRules, supports
from services.adverse_events.escalation import (
    COHORT,
    CohortState,
    Decision,
    Design,
    expansion_size,
)
from services.adverse_events.grading import RULE_VERSION as GRADING_RULES
from services.adverse_events.grading import (
    CrsGrade,
    CrsInputs,
    IcansGrade,
    IcansInputs,
    Scale,
    check_ctcae_grade,
    check_grade_5,
    check_manual_grade,
    check_scale,
    grade_crs_explained,
    grade_icans_explained,
)
from shared.clinical import RECORDED_BEFORE_CONVENTIONS, DayConvention, Study
from shared.clinical import Infused as Infused  # re-exported: the domain speaks of it
from shared.kernel.provenance import Attribution, Meaning, Provenance
from shared.kernel.records import SubjectRecord, named_in_its_study
from shared.study import StudyDefinition, acting_study

GRADE_SIGNATURE = Meaning.AUTHORSHIP
CAUSALITY_SIGNATURE = Meaning.AUTHORSHIP
DLT_SIGNATURE = Meaning.APPROVAL


@dataclass(frozen=True)
class StudyRules:
    """One study's rules of adverse events, from its definition (no I/O: the service
    reads the definition and passes these in): its calendar (study days, the DLT and
    TEAE windows), the rule version of its windows, its DLT criteria, its escalation
    design, and the namespace of its safety reviews' record ids."""

    study_id: str
    calendar: Study
    windows_version: str
    dlt: DltRules
    design: Design
    reviews: UUID

    @classmethod
    def of(cls, definition: StudyDefinition) -> StudyRules:
        return cls(
            definition.study_id,
            Study.of(definition),
            rules_windows.rule_version(definition),
            DltRules.of(definition),
            Design.of(definition),
            uuid5(NAMESPACE_URL, definition.urn("safety-review")),
        )


class Relatedness(StrEnum):
    UNRELATED = "unrelated"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"

    @property
    def related(self) -> bool:
        return self in (Relatedness.POSSIBLE, Relatedness.PROBABLE, Relatedness.DEFINITE)


@dataclass(frozen=True)
class Grading:
    """A grade and what it rests on: a CTCAE grade, or the ASTCT inputs of CRS or ICANS."""

    scale: str  # CTCAE | ASTCT-CRS | ASTCT-ICANS
    grade: int
    computed_grade: int | None
    decided_by: str
    crs: CrsInputs | None = None
    icans: IcansInputs | None = None
    reason: str | None = None
    rule_version: str = GRADING_RULES

    @property
    def death_from_components(self) -> bool:
        """Whether the ASTCT components given record death from CRS or ICANS."""
        return bool(
            (self.crs is not None and self.crs.death_from_crs)
            or (self.icans is not None and self.icans.death_from_icans)
        )


@dataclass(frozen=True)
class Seriousness:
    """SDTM serious criteria flags (AESDTH, AESLIFE, AESHOSP, AESDISAB, AESCONG, AESMIE)."""

    death: bool
    life_threatening: bool
    hospitalisation: bool
    disability: bool
    congenital_anomaly: bool
    medically_important: bool

    @property
    def serious(self) -> bool:
        return any(self.__dict__.values())


def grading_of(
    term: str,
    manual_grade: int | None,
    reason: str | None,
    crs: CrsInputs | None = None,
    icans: IcansInputs | None = None,
) -> Grading:
    """Grade by ASTCT from the components (CRS, ICANS) or by CTCAE for the term.

    A manual grade that differs from the computed ASTCT grade needs a reason.
    """
    if crs is not None and icans is not None:
        raise errors.InvalidGradingInput("one event is graded as CRS or as ICANS, not both")
    explained: CrsGrade | IcansGrade | None = None
    scale = Scale.CTCAE
    if crs is not None:
        explained, scale = grade_crs_explained(crs), Scale.ASTCT_CRS
    elif icans is not None:
        explained, scale = grade_icans_explained(icans), Scale.ASTCT_ICANS
    check_scale(term, scale)  # CRS and ICANS by their components, other terms by CTCAE
    if explained is not None:
        grade = explained.grade if manual_grade is None else manual_grade
        check_manual_grade(explained.grade, grade, reason)
        return Grading(
            scale.value, grade, explained.grade, explained.by, crs, icans, reason or None
        )
    if manual_grade is None:
        raise errors.InvalidGradingInput(f"a CTCAE grade is needed for {term!r}")
    return Grading(
        scale.value, check_ctcae_grade(term, manual_grade), None, "investigator", reason=reason
    )


class AdverseEvent(SubjectRecord):
    """One adverse event of one subject."""

    @classmethod
    def report(
        cls,
        subject_id: str,
        term: str,
        verbatim: str,
        meddra_code: str | None,
        onset_at: datetime,
        infused: Infused,
        attribution: Attribution,
        rules: StudyRules,
    ) -> AdverseEvent:
        """Report an event; its study day, TEAE flag and DLT window are derived now by
        the ``rules`` of the study it is reported in."""
        if onset_at > attribution.now:
            raise errors.InvalidTime("the onset cannot be later than the server clock")
        if not term.strip() or not verbatim.strip():
            raise errors.InvalidGradingInput("an adverse event needs a term and its verbatim text")
        study = rules.calendar
        day = rules_windows.study_day(infused.infused_at, onset_at, study)
        return cls(
            subject_id=subject_id,
            term=term.strip(),
            verbatim=verbatim.strip(),
            meddra_code=meddra_code,
            onset_at=onset_at,
            study_day=day,
            treatment_emergent=rules_windows.treatment_emergent(
                onset_at, infused.infused_at, study
            ),
            in_dlt_window=rules_windows.within_dlt_window(onset_at, infused.infused_at, study),
            dose_level=infused.dose_level,
            rule_version=rules.windows_version,
            provenance=attribution.provenance,
            study_day_convention=study.convention.value,
        )

    @event("AdverseEventReported")
    def __init__(
        self,
        subject_id: str,
        term: str,
        verbatim: str,
        meddra_code: str | None,
        onset_at: datetime,
        study_day: int,
        treatment_emergent: bool,
        in_dlt_window: bool,
        dose_level: int,
        rule_version: str,
        provenance: Provenance,
        study_day_convention: str = RECORDED_BEFORE_CONVENTIONS.value,  # reports before: none
    ) -> None:
        self.subject_id = subject_id
        # the study it was reported in (events stored before studies were named: the first)
        self.study_id = acting_study(provenance)
        self.term = term
        self.onset_at = onset_at
        self.study_day = study_day  # as recorded, in study_day_convention
        self.study_day_convention = DayConvention(study_day_convention)
        self.treatment_emergent = treatment_emergent
        self.in_dlt_window = in_dlt_window
        self.dose_level = dose_level
        self.grading: Grading | None = None
        self.seriousness: Seriousness | None = None
        self.related: bool | None = None
        self.dlt: bool | None = None
        self.resolved_on: date | None = None

    def grade(self, grading: Grading, attribution: Attribution) -> None:
        self._check_open()
        self.check_ungraded()
        self._check_death_for(grading)
        self._graded(grading, attribution.provenance)

    def check_ungraded(self) -> None:
        """A first grading needs an event not graded yet (a later one is a regrade)."""
        if self.grading is not None:
            raise errors.AlreadyGraded("this event is graded; regrade it with a reason")

    @event("AdverseEventGraded")
    def _graded(self, grading: Grading, provenance: Provenance) -> None:
        self.grading = grading

    def regrade(self, grading: Grading, reason: str, attribution: Attribution) -> None:
        self._check_open()
        old = self._graded_already()
        if not reason.strip():
            raise errors.ReasonRequired("a regrade needs a reason", field="reason")
        self._check_death_for(grading)
        self._regraded(old.grade, grading, reason.strip(), attribution.provenance)

    @event("AdverseEventRegraded")
    def _regraded(
        self, old_grade: int, grading: Grading, reason: str, provenance: Provenance
    ) -> None:
        self.grading = grading

    def assess_seriousness(self, seriousness: Seriousness, attribution: Attribution) -> None:
        self._check_open()
        if self.grading is not None and not seriousness.death:  # a grade 5 keeps its death
            check_grade_5(self.term, self.grading.grade, self.grading.death_from_components)
        self._seriousness_assessed(seriousness, attribution.provenance)

    @event("SeriousnessAssessed")
    def _seriousness_assessed(self, seriousness: Seriousness, provenance: Provenance) -> None:
        self.seriousness = seriousness

    def assess_causality(
        self, car_t: Relatedness, lymphodepletion: Relatedness, attribution: Attribution
    ) -> None:
        self._check_open()
        self._graded_already()
        self._causality_assessed(car_t.value, lymphodepletion.value, attribution.provenance)

    @event("CausalityAssessed")
    def _causality_assessed(self, car_t: str, lymphodepletion: str, provenance: Provenance) -> None:
        self.related = Relatedness(car_t).related or Relatedness(lymphodepletion).related

    def adjudicate_dlt(
        self,
        is_dlt: bool,
        criterion: DltCriterion | None,
        reason: str,
        attribution: Attribution,
        rules: StudyRules,
    ) -> None:
        """Adjudicate DLT by the ``rules`` of the event's study: a DLT needs onset in the
        window and a criterion of the study's that the record bears out."""
        grading = self._graded_already()
        if is_dlt:
            study = rules.calendar
            onset_day = study.day_from(self.study_day, self.study_day_convention)
            if not self.in_dlt_window:  # as decided when the event was reported
                raise errors.NotADlt(
                    f"the event started on study day {onset_day}, outside the DLT window "
                    f"({study.dlt_window}, {study.convention})",
                    study_day=onset_day,
                )
            course = Course(self.onset_at, onset_day, self.resolved_on, attribution.now)
            if criterion is None or not supports(
                criterion, grading.scale, self.term, grading.grade, bool(self.related), course,
                study, rules.dlt,
            ):  # fmt: skip
                raise errors.NotADlt(
                    f"{grading.scale} grade {grading.grade} of {self.term!r} (onset study day "
                    f"{onset_day}, {_resolution(self.resolved_on)}) does not meet DLT "
                    f"criterion {criterion}",
                    criterion=None if criterion is None else criterion.value,
                    grade=grading.grade,
                    scale=grading.scale,
                    onset_study_day=onset_day,
                    last_study_day_present=course.last_day_present,
                )
        if not reason.strip():
            raise errors.ReasonRequired("a DLT adjudication states its reasoning")
        self._dlt_adjudicated(
            is_dlt,
            None if criterion is None else criterion.value,
            reason.strip(),
            rules.dlt.rule_version,
            attribution.provenance,
        )

    @event("DltAdjudicated")
    def _dlt_adjudicated(
        self,
        is_dlt: bool,
        criterion: str | None,
        reason: str,
        rule_version: str,
        provenance: Provenance,
    ) -> None:
        self.dlt = is_dlt

    def resolve(self, ended_on: date, outcome: str, attribution: Attribution) -> None:
        self._check_open()
        if ended_on < self.onset_at.date() or ended_on > attribution.now.date():
            raise errors.InvalidTime("an event ends after its onset and not in the future")
        if not outcome.strip():
            raise errors.InvalidGradingInput("a resolution names the outcome")
        self._resolved(ended_on, outcome.strip(), attribution.provenance)

    @event("AdverseEventResolved")
    def _resolved(self, ended_on: date, outcome: str, provenance: Provenance) -> None:
        self.resolved_on = ended_on

    def _check_death_for(self, grading: Grading) -> None:
        """A grade 5 only where the record shows the death (grading.check_grade_5)."""
        recorded = self.seriousness is not None and self.seriousness.death
        check_grade_5(self.term, grading.grade, recorded or grading.death_from_components)

    def _graded_already(self) -> Grading:
        if self.grading is None:
            raise errors.NotGradedYet("grade the event first")
        return self.grading

    def _check_open(self) -> None:
        if self.resolved_on is not None:
            raise errors.EventResolved(f"the event was resolved on {self.resolved_on}")


def _resolution(resolved_on: date | None) -> str:
    return "unresolved" if resolved_on is None else f"resolved on {resolved_on}"


REVIEW_SIGNATURE = Meaning.APPROVAL
# subjects a reviewed cohort may dose (the first study's: 3 at the next level, or 3 more;
# a study's is its design's cohort size)
NEW_COHORT = COHORT


def safety_review_id(review_number: int, namespace: UUID) -> UUID:
    """A review's record is named by its number in its study's namespace
    (``StudyRules.reviews``), so that the number is approved once in each study."""
    return uuid5(namespace, str(review_number))


class SafetyReview(SubjectRecord):
    """A signed safety review that opens the next cohort (3+3). Not about one subject."""

    create_id = staticmethod(named_in_its_study)

    @classmethod
    def approve(
        cls,
        state: CohortState,
        approved_level: int,
        review_number: int,
        attribution: Attribution,
        reviewed_at: datetime,
        rules: StudyRules,
    ) -> SafetyReview:
        """Approve ``approved_level`` for the next cohort, if the 3+3 state at the review's
        clinical time ``reviewed_at`` allows it (every DLT window closed by then), in the
        study of ``rules``."""
        if state.open_windows:
            raise errors.ReviewRefused(
                f"{state.open_windows} DLT window(s) are still open",
                open_windows=state.open_windows,
            )
        if state.decision not in (Decision.ESCALATE, Decision.EXPAND) or (
            state.next_level != approved_level
        ):
            raise errors.ReviewRefused(
                f"the 3+3 state ({state.decision} at level {state.level}) does not open "
                f"level {approved_level}",
                decision=state.decision.value,
                next_level=state.next_level,
            )
        return cls._reviewed(
            rules,
            subject_id=None,
            approved_level=approved_level,
            decision=state.decision.value,
            level_reviewed=state.level,
            dosed=state.dosed,
            dlts=state.dlts,
            cohort_size=rules.design.cohort,
            review_number=review_number,
            rule_version=state.rule_version,
            provenance=attribution.provenance,
            reviewed_at=reviewed_at,
        )

    @classmethod
    def approve_expansion(
        cls,
        state: CohortState,
        level: int,
        review_number: int,
        attribution: Attribution,
        reviewed_at: datetime,
        rules: StudyRules,
    ) -> SafetyReview:
        """Open the dose-expansion cohort at ``level``, if 3+3 has cleared it by the review's
        clinical time ``reviewed_at`` (every DLT window closed): as many subjects as bring
        the level to the total of the design of ``rules``' study."""
        size = expansion_size(state, level, rules.design.expansion_total_at_level)
        index = state.levels_cleared.index(level)
        return cls._reviewed(
            rules,
            subject_id=None,
            approved_level=level,
            decision=Decision.DOSE_EXPANSION.value,
            level_reviewed=level,
            dosed=state.dosed_at_cleared[index],
            dlts=state.dlts_at_cleared[index],
            cohort_size=size,
            review_number=review_number,
            rule_version=state.rule_version,
            provenance=attribution.provenance,
            reviewed_at=reviewed_at,
        )

    @classmethod
    def _reviewed(cls, rules: StudyRules, **approval: Any) -> SafetyReview:
        """The approval, named by its number in the namespace of ``rules``' study."""
        named = safety_review_id(approval["review_number"], rules.reviews)
        created: Any = cls.SafetyReviewApproved  # its "created" event (eventsourcing's)
        return cls._create(created, id=named, **approval)

    @event("SafetyReviewApproved")
    def __init__(
        self,
        subject_id: str | None,
        approved_level: int,
        decision: str,
        level_reviewed: int,
        dosed: int,
        dlts: int,
        cohort_size: int,
        review_number: int,
        rule_version: str,
        provenance: Provenance,
        reviewed_at: datetime | None = None,  # clinical; approvals before it had none
    ) -> None:
        # a trial-level record: it names no subject, so it is published without one
        self.subject_id = subject_id  # type: ignore[assignment]
        self.approved_level = approved_level
