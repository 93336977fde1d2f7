"""The value types a service's store transcodes are found from its records' events
(``shared.adapters.eventstore.stored_value_types``): nested ones and those in unions too."""

from __future__ import annotations

from services.adverse_events.domain import AdverseEvent, Grading, SafetyReview, Seriousness
from services.enrollment.domain import Consent, Screening, Subject
from services.enrollment.rules import CriterionResult, EligibilityAssessment, Observation
from services.identity.domain import User
from shared.adapters.eventstore import stored_value_types
from shared.kernel.provenance import Actor, Provenance
from shared.kernel.signatures import Signature, SignatureV1


def test_a_subjects_values_nested_ones_and_those_of_a_correction_are_found() -> None:
    found = set(stored_value_types((Subject,)))

    # Observation is inside Screening's mapping and in a correction's union;
    # CriterionResult inside the eligibility assessment; Actor inside Provenance.
    assert {Consent, Screening, Observation, EligibilityAssessment, CriterionResult} <= found
    assert {Provenance, Actor, Signature, SignatureV1} <= found


def test_the_values_of_every_record_named_are_found() -> None:
    assert {Grading, Seriousness} <= set(stored_value_types((AdverseEvent, SafetyReview)))


def test_an_account_carries_no_values_but_who_acted() -> None:
    assert set(stored_value_types((User,))) == {Provenance, Actor}
