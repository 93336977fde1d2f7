"""The 3+3 state the service derives from the infusions it knows and its own DLT records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from services.adverse_events import errors
from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.dlt import DltCriterion
from services.adverse_events.domain import Infused, grading_of
from services.adverse_events.escalation import Decision
from services.adverse_events.grading import CrsInputs, Hypotension, Oxygen
from services.adverse_events.publication import to_contract
from shared.contracts.adverse_events import SafetyReviewApprovedV1
from shared.kernel.provenance import Meaning
from tests.support import MEMORY, SIGNER, command, signing

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=60)  # every DLT window closed
GRADE_4_CRS = CrsInputs(Decimal("39.5"), False, Hypotension.MULTIPLE_VASOPRESSORS, Oxygen.NONE)


def application() -> AdverseEventsApplication:
    return AdverseEventsApplication(signer=SIGNER, env=MEMORY)


def infused(level: int, *subjects: str, at: datetime = LONG_AGO) -> dict[str, Infused]:
    return {s: Infused(at + timedelta(hours=n), level) for n, s in enumerate(subjects)}


def record_dlt(app: AdverseEventsApplication, subject: str, when: Infused) -> None:
    onset = when.infused_at + timedelta(days=2)
    record = app.report(
        subject, when, "Cytokine release syndrome", "CRS", None, onset, command(NOW)
    )
    grading = grading_of(record.term, None, None, crs=GRADE_4_CRS)
    app.grade(record.id, grading, command(NOW), signing(Meaning.AUTHORSHIP))
    app.adjudicate_dlt(record.id, True, DltCriterion.CRS_GRADE_4, "grade 4", command(NOW),
                       signing(Meaning.APPROVAL))  # fmt: skip


def test_three_without_dlt_at_level_1_escalate_to_level_2() -> None:
    state = application().cohort(infused(1, "S-1", "S-2", "S-3"), NOW)
    assert (state.decision, state.next_level) == (Decision.ESCALATE, 2)


def test_a_dlt_among_three_at_level_2_expands_the_cohort() -> None:
    app = application()
    dosed = {
        **infused(1, "S-1", "S-2", "S-3"),
        **infused(2, "S-4", "S-5", "S-6", at=LONG_AGO + timedelta(days=1)),
    }
    record_dlt(app, "S-5", dosed["S-5"])
    state = app.cohort(dosed, NOW)
    assert (state.level, state.decision, state.next_level, state.dlts) == (2, Decision.EXPAND, 2, 1)


def test_open_windows_make_the_next_cohort_wait() -> None:
    state = application().cohort(infused(1, "S-1", "S-2", "S-3", at=NOW - timedelta(days=3)), NOW)
    assert (state.decision, state.next_level, state.open_windows) == (Decision.WAIT, None, 3)


def test_a_dlt_that_was_later_adjudicated_away_does_not_count() -> None:
    app = application()
    dosed = infused(1, "S-1", "S-2", "S-3")
    record_dlt(app, "S-2", dosed["S-2"])
    [dlt_record] = {
        UUID(str(n.originator_id)) for n in app.recorder.select_notifications(start=1, limit=50)
    }
    app.adjudicate_dlt(dlt_record, False, None, "re-adjudicated: not a DLT", command(NOW),
                       signing(Meaning.APPROVAL))  # fmt: skip
    assert app.dlt_subjects() == set()
    assert app.cohort(dosed, NOW).decision is Decision.ESCALATE


def approve(app: AdverseEventsApplication, dosed: dict[str, Infused], at: datetime | None) -> Any:
    return app.approve_safety_review(
        1, 2, dosed, command(NOW), signing(Meaning.APPROVAL), reviewed_at=at
    )


def test_a_safety_review_carries_its_clinical_time_and_publishes_it() -> None:
    app = application()
    held = NOW - timedelta(days=5)
    review = approve(app, infused(1, "S-1", "S-2", "S-3"), held)
    [approval] = [e for _, e in app.stored_events() if type(e).__name__ == "SafetyReviewApproved"]
    assert to_contract(approval).occurred_at == held
    assert review.approved_level == 2


def test_a_review_dated_before_the_cohorts_dlt_windows_closed_is_refused() -> None:
    """Infused 20 days before the review's clinical date: day 28 had not ended then, even
    though it has by the time the review is recorded."""
    dosed = infused(1, "S-1", "S-2", "S-3", at=NOW - timedelta(days=40))
    with pytest.raises(errors.ReviewRefused) as refused:
        approve(application(), dosed, NOW - timedelta(days=20))
    assert refused.value.details["open_windows"] == 3
    approve(application(), dosed, NOW - timedelta(days=5))  # after day 28 of each: opens


@pytest.mark.parametrize(
    ("days_after", "open_windows"), [(28, 3), (29, 0)]
)  # fmt: skip
def test_the_cohort_s_windows_close_when_day_29_begins_with_the_infusion_as_day_0(
    days_after: int, open_windows: int
) -> None:
    """Infused at 10:00 on 1 September: day 28 is 29 September (infusion + 28 days) and
    the windows are open all of it; they close at 00:00 on 30 September."""
    infused_at = datetime(2026, 9, 1, 10, 0, tzinfo=UTC)
    dosed = infused(1, "S-1", "S-2", "S-3", at=infused_at)
    midnight = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(days=days_after)
    state = application().cohort(dosed, midnight)
    assert state.open_windows == open_windows
    assert state.rule_version == "NCT05030779/def-1/escalation/2"


def test_a_review_cannot_be_dated_in_the_future() -> None:
    with pytest.raises(errors.InvalidTime):
        approve(application(), infused(1, "S-1", "S-2", "S-3"), NOW + timedelta(minutes=1))


def test_an_expansion_review_opens_the_rest_of_the_designs_total_at_a_cleared_level() -> None:
    app, dosed = application(), infused(1, "S-1", "S-2", "S-3")
    app.approve_safety_review(1, 1, dosed, command(NOW), signing(Meaning.APPROVAL),
                              reviewed_at=NOW - timedelta(days=1), dose_expansion=True)  # fmt: skip
    [approval] = [e for _, e in app.stored_events() if type(e).__name__ == "SafetyReviewApproved"]
    published = to_contract(approval)
    assert isinstance(published, SafetyReviewApprovedV1)
    assert (published.decision, published.approved_level, published.cohort_size) == (
        "dose_expansion", 1, 12,
    )  # fmt: skip
    state = app.cohort({**dosed, **infused(1, "S-4", at=NOW)}, NOW)
    assert (state.decision, state.level, state.next_level, state.expansion_dosed) == (
        Decision.DOSE_EXPANSION, 1, 1, 1,
    )  # fmt: skip


def test_no_escalation_review_after_the_expansion_opened() -> None:
    app, dosed = application(), infused(1, "S-1", "S-2", "S-3")
    app.approve_safety_review(1, 1, dosed, command(NOW), signing(Meaning.APPROVAL),
                              reviewed_at=NOW - timedelta(days=1), dose_expansion=True)  # fmt: skip
    with pytest.raises(errors.ReviewRefused):
        app.approve_safety_review(2, 2, dosed, command(NOW), signing(Meaning.APPROVAL))


def test_an_expansion_at_a_level_not_cleared_is_refused() -> None:
    with pytest.raises(errors.ExpansionRefused):
        application().approve_safety_review(
            1, 2, infused(1, "S-1", "S-2", "S-3"), command(NOW), signing(Meaning.APPROVAL),
            dose_expansion=True,
        )  # fmt: skip
