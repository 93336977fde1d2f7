"""A subject's assessments over follow-up: disease activity, autoantibodies, CAR-T
kinetics, remission and progression (no I/O).

One record per subject, opened by ``FollowUpStarted`` when the first assessment is
recorded: it anchors the study calendar at the infusion (from the local view of the
infusion topic). Every later event carries its study day, counted in the study's
convention (``shared.clinical.NCT05030779``: the infusion's date is day 0), and names
that convention (events stored before conventions were named carry none: theirs counted
the infusion's date as day 1). A remission is derived from
a visit, the visit before it and the baseline (the last visit before the infusion) by
``rules.derive_response``, and names them by their published event ids, so an auditor
can follow the figure back to the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from services.assessments import errors
from services.assessments.laboratory import AutoantibodyResult, KineticsSample
from services.assessments.rules import RULE_VERSION as RESPONSE_RULES
from services.assessments.rules import (
    Activity,
    Response,
    ResponseDerivation,
    SledaiItem,
    derive_response,
)
from shared.clinical import RECORDED_BEFORE_CONVENTIONS, DayConvention, Infused, Study
from shared.clinical import STUDY as STUDY  # the first study's calendar
from shared.kernel.provenance import Attribution, Meaning, Provenance
from shared.kernel.publication import event_id
from shared.kernel.records import SubjectRecord, named_in_its_study
from shared.study import DEFAULT_STUDY_ID, StudyDefinition, acting_study

REMISSION_SIGNATURE = Meaning.APPROVAL  # the investigator approves the derived response
BEFORE_CONVENTIONS = RECORDED_BEFORE_CONVENTIONS.value  # what an event without one counted


@dataclass(frozen=True)
class StudyRules:
    """What one study's definition says of its assessments (no I/O: the service reads
    the definition and passes these in): its calendar (how study days are counted) and
    the namespace of its subjects' assessment records' ids."""

    study_id: str
    calendar: Study
    records: UUID

    @classmethod
    def of(cls, definition: StudyDefinition) -> StudyRules:
        return cls(
            definition.study_id,
            Study.of(definition),
            uuid5(NAMESPACE_URL, definition.urn("assessments")),
        )


def assessments_record_id(subject_id: str, namespace: UUID) -> UUID:
    """The id of a subject's assessments record in its study's namespace
    (``StudyRules.records``): the same subject id in two studies is two records."""
    return uuid5(namespace, subject_id)


@dataclass(frozen=True)
class VitalStatus:
    """What the enrollment view knows: when the subject was withdrawn, or died."""

    withdrawn_at: datetime | None = None
    died_at: datetime | None = None


class Progression(StrEnum):
    PROGRESSION = "progression"
    FLARE = "flare"


@dataclass(frozen=True)
class Visit:
    """A disease-activity visit as stored: the items present, the inputs, the scores."""

    assessed_at: datetime
    study_day: int  # stored: in the convention its event names; in state: the study's
    label: str
    items_present: tuple[str, ...]
    pga: Decimal
    prednisone_mg_per_day: Decimal
    maintenance_immunosuppression_only: bool
    new_bilag_a: int | None
    new_bilag_b: int | None
    sledai_2k: int
    clinical_sledai: int
    rule_version: str = RESPONSE_RULES

    @property
    def activity(self) -> Activity:
        return Activity(
            frozenset(SledaiItem(i) for i in self.items_present), self.pga,
            self.prednisone_mg_per_day, self.maintenance_immunosuppression_only,
            self.new_bilag_a, self.new_bilag_b,
        )  # fmt: skip


@dataclass(frozen=True)
class RemissionInputs:
    """The visits a response was derived from, by published event id."""

    visit_event_id: str
    previous_event_id: str | None
    baseline_event_id: str


class SubjectAssessments(SubjectRecord):
    """Every assessment of one subject after enrollment, in the order recorded."""

    create_id = staticmethod(named_in_its_study)

    @classmethod
    def start(
        cls,
        subject_id: str,
        infused: Infused,
        attribution: Attribution,
        rules: StudyRules,
    ) -> SubjectAssessments:
        """Open the subject's record in the study of ``rules``, named in its namespace."""
        created: Any = cls.FollowUpStarted  # its "created" event (eventsourcing's)
        return cls._create(
            created,
            id=assessments_record_id(subject_id, rules.records),
            subject_id=subject_id,
            infused_at=infused.infused_at,
            dose_level=infused.dose_level,
            provenance=attribution.provenance,
        )

    @event("FollowUpStarted")
    def __init__(
        self, subject_id: str, infused_at: datetime, dose_level: int, provenance: Provenance
    ) -> None:
        self.subject_id = subject_id
        # the study it belongs to (records opened before studies were named: the first)
        self.study_id = acting_study(provenance)
        self.infused_at = infused_at
        self.dose_level = dose_level
        self.visits: dict[str, Visit] = {}  # by published event id, in order
        self.remissions: dict[str, Response] = {}  # visit event id -> response

    # --- measurements -------------------------------------------------------------------

    def assess_activity(
        self,
        label: str,
        activity: Activity,
        at: datetime,
        vital: VitalStatus,
        attribution: Attribution,
        rules: StudyRules,
    ) -> None:
        day = self._study_day(at, vital, attribution, rules.calendar)
        visit = Visit(
            at, day, _text(label, "a visit label"),
            tuple(sorted(i.value for i in activity.items_present)), activity.pga,
            activity.prednisone_mg_per_day, activity.maintenance_immunosuppression_only,
            activity.new_bilag_a, activity.new_bilag_b, activity.sledai_2k,
            activity.clinical_sledai,
        )  # fmt: skip
        self._activity_assessed(visit, attribution.provenance, rules.calendar.convention.value)

    @event("DiseaseActivityAssessed")
    def _activity_assessed(
        self, visit: Visit, provenance: Provenance, study_day_convention: str = BEFORE_CONVENTIONS
    ) -> None:
        # kept with its study day in the study's convention, whichever it was recorded in:
        # only the first study has visits recorded before conventions were named; any
        # other's are recorded in its own convention, and kept as recorded
        recorded_in = DayConvention(study_day_convention)
        day = (
            STUDY.day_from(visit.study_day, recorded_in)
            if self.study_id == DEFAULT_STUDY_ID
            else visit.study_day
        )
        self.visits[str(event_id(self.id, self.version + 1))] = replace(visit, study_day=day)

    def measure_autoantibodies(
        self,
        results: tuple[AutoantibodyResult, ...],
        at: datetime,
        vital: VitalStatus,
        attribution: Attribution,
        rules: StudyRules,
    ) -> None:
        if not results or len({r.analyte for r in results}) != len(results):
            raise errors.InvalidAssessment("a panel has one result per analyte, at least one")
        calendar = rules.calendar
        self._autoantibodies_measured(
            at, self._study_day(at, vital, attribution, calendar), results,
            attribution.provenance, calendar.convention.value,
        )  # fmt: skip

    @event("AutoantibodyMeasured")
    def _autoantibodies_measured(
        self,
        sampled_at: datetime,
        study_day: int,
        results: tuple[AutoantibodyResult, ...],
        provenance: Provenance,
        study_day_convention: str = BEFORE_CONVENTIONS,
    ) -> None:
        pass

    def measure_kinetics(
        self,
        sample: KineticsSample,
        at: datetime,
        vital: VitalStatus,
        attribution: Attribution,
        rules: StudyRules,
    ) -> None:
        day = self._study_day(at, vital, attribution, rules.calendar)
        if at < self.infused_at:
            raise errors.InvalidAssessment("CAR-T cells are measured after the infusion")
        convention = rules.calendar.convention.value
        self._kinetics_measured(at, day, sample, attribution.provenance, convention)

    @event("CarTKineticsMeasured")
    def _kinetics_measured(
        self, sampled_at: datetime, study_day: int, sample: KineticsSample, provenance: Provenance,
        study_day_convention: str = BEFORE_CONVENTIONS,
    ) -> None:  # fmt: skip
        pass

    # --- outcomes ---------------------------------------------------------------------

    def check_unassessed(self, visit_event_id: str) -> None:
        """A visit has one response (checked before a signature too: of two who signed the
        same visit at once, the second is told it is assessed, not that its signature names
        the version before the first one's)."""
        if visit_event_id in self.remissions:
            raise errors.AlreadyAssessed(f"visit {visit_event_id} has its response already")

    def assess_remission(
        self,
        visit_event_id: str,
        claimed: Response,
        vital: VitalStatus,
        attribution: Attribution,
        rules: StudyRules,
    ) -> ResponseDerivation:
        """Record the response at a visit, if the rule set derives the claimed category
        from the visit, the visit before it and the baseline; refuse it otherwise."""
        visit = self.visits.get(visit_event_id)
        if visit is None:
            raise errors.VisitNotFound(f"no disease-activity visit {visit_event_id} here")
        if visit.assessed_at < self.infused_at:
            raise errors.InputsMissing("a response is assessed at a visit after the infusion")
        self.check_unassessed(visit_event_id)
        calendar = rules.calendar
        day = self._study_day(visit.assessed_at, vital, attribution, calendar)  # the study's
        inputs, derivation = self._derive(visit_event_id)
        if derivation.response is not claimed:
            raise errors.RemissionNotSupported(
                f"the rule set derives {derivation.response}, not {claimed}, at this visit",
                derived=derivation.response.value,
                sri4=derivation.sri4,
                lldas=derivation.lldas,
                doris=derivation.doris,
            )
        self._remission_assessed(inputs, visit.assessed_at, day, derivation,
                                 attribution.provenance, calendar.convention.value)  # fmt: skip
        return derivation

    @event("RemissionAssessed")
    def _remission_assessed(
        self,
        inputs: RemissionInputs,
        assessed_at: datetime,
        study_day: int,
        derivation: ResponseDerivation,
        provenance: Provenance,
        study_day_convention: str = BEFORE_CONVENTIONS,
    ) -> None:
        self.remissions[inputs.visit_event_id] = Response(derivation.response)

    def report_progression(
        self, kind: Progression, description: str, at: datetime, vital: VitalStatus,
        attribution: Attribution, rules: StudyRules,
    ) -> None:  # fmt: skip
        day = self._study_day(at, vital, attribution, rules.calendar)
        if at < self.infused_at:
            raise errors.InvalidAssessment("progression is reported after the infusion")
        self._progression_reported(
            kind.value, _text(description, "a description"), at, day, attribution.provenance,
            rules.calendar.convention.value,
        )  # fmt: skip

    @event("ProgressionReported")
    def _progression_reported(
        self, kind: str, description: str, occurred_at: datetime, study_day: int,
        provenance: Provenance, study_day_convention: str = BEFORE_CONVENTIONS,
    ) -> None:  # fmt: skip
        pass

    # --- rules of the record -----------------------------------------------------------

    def _derive(self, visit_event_id: str) -> tuple[RemissionInputs, ResponseDerivation]:
        order = sorted(self.visits, key=lambda v: self.visits[v].assessed_at)
        before = [v for v in order if self.visits[v].assessed_at < self.infused_at]
        if not before:
            raise errors.InputsMissing(
                "a response needs a baseline visit (the last one before the infusion)"
            )
        position = order.index(visit_event_id)
        previous = order[position - 1] if position > 0 else None
        baseline = before[-1]
        derivation = derive_response(
            self.visits[visit_event_id].activity,
            None if previous is None else self.visits[previous].activity,
            self.visits[baseline].activity,
        )
        return RemissionInputs(visit_event_id, previous, baseline), derivation

    def _study_day(
        self, at: datetime, vital: VitalStatus, attribution: Attribution, calendar: Study
    ) -> int:
        if at > attribution.now:
            raise errors.InvalidTime("an assessment cannot be later than the server clock")
        for what, when in (("died", vital.died_at), ("was withdrawn", vital.withdrawn_at)):
            if when is not None and at > when:
                raise errors.SubjectInactive(
                    f"subject {self.subject_id} {what} on {when.date()}: nothing is "
                    "assessed after that",
                    subject_id=self.subject_id,
                )
        return calendar.study_day(self.infused_at, at)


def _text(value: str, what: str) -> str:
    if not value.strip():
        raise errors.InvalidAssessment(f"{what} is needed")
    return value.strip()
