"""The assessments application: command methods over each subject's assessment record.

The first assessment of a subject opens the record (``FollowUpStarted``) at the
infusion the local view knows; a remission is signed over its published form and saved
with its signature, atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache

from services.assessments import errors
from services.assessments.domain import (
    Progression,
    StudyRules,
    SubjectAssessments,
    VitalStatus,
    assessments_record_id,
)
from services.assessments.laboratory import AutoantibodyResult, KineticsSample
from services.assessments.publication import to_contract
from services.assessments.rules import Activity, Response
from shared.adapters.eventstore import ServiceApplication
from shared.clinical import Infused
from shared.kernel.provenance import Attribution
from shared.study import DEFAULT_STUDY_ID, acting_study, study_definition
from shared.web.auth import SigningAssertion


@cache
def study_rules(study_id: str) -> StudyRules:
    """The assessments rules of ``study_id``, from its definition, read once."""
    return StudyRules.of(study_definition(study_id))


class AssessmentsApplication(ServiceApplication):
    """Commands of the assessments service; each loads (or opens), decides and saves
    one subject's record, in the study the caller acts in, by that study's rules."""

    name = "assessments"
    records = (SubjectAssessments,)

    def assess_activity(
        self, subject_id: str, infused: Infused | None, vital: VitalStatus, label: str,
        activity: Activity, at: datetime, attribution: Attribution,
    ) -> SubjectAssessments:  # fmt: skip
        rules = study_rules(acting_study(attribution.provenance))
        decide = lambda r: r.assess_activity(label, activity, at, vital, attribution, rules)  # noqa: E731
        return self._change(subject_id, infused, attribution, decide)

    def measure_autoantibodies(
        self, subject_id: str, infused: Infused | None, vital: VitalStatus,
        results: tuple[AutoantibodyResult, ...], at: datetime, attribution: Attribution,
    ) -> SubjectAssessments:  # fmt: skip
        rules = study_rules(acting_study(attribution.provenance))
        decide = lambda r: r.measure_autoantibodies(results, at, vital, attribution, rules)  # noqa: E731
        return self._change(subject_id, infused, attribution, decide)

    def measure_kinetics(
        self, subject_id: str, infused: Infused | None, vital: VitalStatus,
        sample: KineticsSample, at: datetime, attribution: Attribution,
    ) -> SubjectAssessments:  # fmt: skip
        rules = study_rules(acting_study(attribution.provenance))
        decide = lambda r: r.measure_kinetics(sample, at, vital, attribution, rules)  # noqa: E731
        return self._change(subject_id, infused, attribution, decide)

    def report_progression(
        self, subject_id: str, infused: Infused | None, vital: VitalStatus,
        kind: Progression, description: str, at: datetime, attribution: Attribution,
    ) -> SubjectAssessments:  # fmt: skip
        rules = study_rules(acting_study(attribution.provenance))
        decide = lambda r: r.report_progression(  # noqa: E731
            kind, description, at, vital, attribution, rules
        )
        return self._change(subject_id, infused, attribution, decide)

    def assess_remission(
        self, subject_id: str, vital: VitalStatus, visit_event_id: str, claimed: Response,
        attribution: Attribution, signing: SigningAssertion,
    ) -> SubjectAssessments:  # fmt: skip
        """Record the derived response at a visit, signed by the assertion's signer."""
        study = acting_study(attribution.provenance)

        def decide(record: SubjectAssessments) -> None:
            record.assess_remission(visit_event_id, claimed, vital, attribution, study_rules(study))

        return self.saved_with_retry(
            lambda: self.get(subject_id, study),
            self.decided_and_signed(decide, signing, attribution, to_contract),
            lambda: self._conflict(subject_id),
        )

    def get(self, subject_id: str, study_id: str = DEFAULT_STUDY_ID) -> SubjectAssessments:
        """The subject's assessments in ``study_id`` (the same subject id in another study
        is another record)."""
        record: SubjectAssessments = self.load(
            assessments_record_id(subject_id, study_rules(study_id).records),
            lambda: errors.SubjectNotFound(f"no assessments of subject {subject_id}"),
        )
        return record

    def _change(
        self,
        subject_id: str,
        infused: Infused | None,
        attribution: Attribution,
        decide: Callable[[SubjectAssessments], None],
    ) -> SubjectAssessments:
        study = acting_study(attribution.provenance)

        def load() -> SubjectAssessments:
            try:
                return self.get(subject_id, study)
            except errors.SubjectNotFound:
                if infused is None:
                    raise errors.SubjectNotInfused(
                        f"subject {subject_id} is not infused in the local infusion view; "
                        "retry if the infusion was just recorded",
                        subject_id=subject_id,
                        retryable=True,
                    ) from None
                return SubjectAssessments.start(
                    subject_id, infused, attribution, study_rules(study)
                )

        return self.saved_with_retry(load, decide, lambda: self._conflict(subject_id))

    @staticmethod
    def _conflict(subject_id: str) -> Exception:
        return errors.ConcurrentChange(f"subject {subject_id}'s assessments kept changing; retry")
