"""Every infusion rule, the dose tolerance and the window at their edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.infusion import domain, errors
from services.infusion.rules import InfusionRules, cells_per_kg_millions
from shared.clinical import CohortOpening
from shared.kernel.provenance import Attribution
from shared.study import study_definition
from tests.support import command

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ENROLLED = domain.Enrollment("enrolled", 2)
RULES = InfusionRules()
NAMESPACE = domain.treatment_namespace(study_definition())  # the first study's
COHORT = CohortOpening(2, 3, datetime(2026, 1, 1, tzinfo=UTC), 1)  # level 2 is open
LD_END = date(2026, 11, 15)


def cmd() -> Attribution:
    return command(NOW)


def release(lot: str = "LOT-1", **changes: Any) -> domain.ProductRelease:
    values: dict[str, object] = {
        "lot_id": lot, "product": "CD19/BCMA", "car_positive_percent": Decimal("42.5"),
        "viability_percent": Decimal("91"), "sterility_passed": True,
        "release_tests_passed": True, "released_on": date(2026, 11, 10),
    }  # fmt: skip
    values.update(changes)
    return domain.ProductRelease(**values)  # type: ignore[arg-type]


def regimen(completed_on: date = LD_END) -> domain.Lymphodepletion:
    agents = (
        domain.AgentDose("fludarabine", Decimal(25), 3),
        domain.AgentDose("cyclophosphamide", Decimal(250), 3),
    )
    return domain.Lymphodepletion(agents, completed_on - timedelta(days=2), completed_on)


def infusion(
    cells: str = "140000000", weight: str = "70", start: datetime | None = None
) -> domain.Infusion:
    start = start or datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    lots = (domain.InfusedLot("LOT-1", Decimal(cells)),)
    return domain.Infusion(
        Decimal(weight), lots, start, start + timedelta(minutes=20), "Dr Lin Wei"
    )


def begun() -> domain.Treatment:
    return domain.Treatment.begin(
        "S-001", ENROLLED, domain.Leukapheresis(date(2026, 11, 1), Decimal(180)), cmd(), NAMESPACE
    )


def released() -> domain.Treatment:
    treatment = begun()
    treatment.release(ENROLLED, release(), cmd())
    return treatment


def depleted() -> domain.Treatment:
    treatment = released()
    treatment.deplete(ENROLLED, regimen(), cmd())
    return treatment


@pytest.mark.parametrize(
    ("enrollment", "error"),
    [
        (domain.Enrollment("unknown", None), errors.NotEnrolledYet),
        (domain.Enrollment("eligible", None), errors.NotEnrolledYet),
        (domain.Enrollment("withdrawn", 2), errors.SubjectWithdrawn),
    ],
)
def test_nothing_happens_for_a_subject_not_enrolled(
    enrollment: domain.Enrollment, error: type[errors.OutOfSequence]
) -> None:
    with pytest.raises(error) as refused:
        domain.Treatment.begin(
            "S-001",
            enrollment,
            domain.Leukapheresis(date(2026, 11, 1), Decimal(1)),
            cmd(),
            NAMESPACE,
        )
    assert refused.value.details["status"] == enrollment.status


def test_not_enrolled_yet_is_retryable_and_names_the_status() -> None:
    with pytest.raises(errors.NotEnrolledYet) as refused:
        domain.Treatment.begin(
            "S-001",
            domain.Enrollment("eligible", None),
            domain.Leukapheresis(date(2026, 11, 1), Decimal(1)),
            cmd(),
            NAMESPACE,
        )
    assert refused.value.details == {"subject_id": "S-001", "status": "eligible", "retryable": True}


@pytest.mark.parametrize("status", ["registered", "consented", "screened", "screen_failed", "died"])
def test_not_enrolled_is_not_retryable_when_enrollment_is_a_step_away_or_more(
    status: str,
) -> None:
    with pytest.raises(errors.NotEnrolledYet) as refused:
        domain.Treatment.begin(
            "S-001",
            domain.Enrollment(status, None),
            domain.Leukapheresis(date(2026, 11, 1), Decimal(1)),
            cmd(),
            NAMESPACE,
        )
    assert refused.value.details["retryable"] is False
    assert "enroll the subject first" in refused.value.message


def test_withdrawal_stops_everything_later() -> None:
    treatment = released()
    with pytest.raises(errors.SubjectWithdrawn):
        treatment.deplete(domain.Enrollment("withdrawn", 2), regimen(), cmd())


@pytest.mark.part11("11.10(f)")
def test_lymphodepletion_needs_a_released_product() -> None:
    with pytest.raises(errors.ProductNotReleased):
        begun().deplete(ENROLLED, regimen(), cmd())


def test_a_lot_whose_tests_failed_cannot_be_released() -> None:
    with pytest.raises(errors.ReleaseTestsFailed):
        begun().release(ENROLLED, release(sterility_passed=False), cmd())


@pytest.mark.parametrize("field", ["car_positive_percent", "viability_percent"])
def test_percentages_stay_between_0_and_100(field: str) -> None:
    with pytest.raises(errors.InvalidMeasurement):
        changes: dict[str, Any] = {field: Decimal("100.1")}
        begun().release(ENROLLED, release(**changes), cmd())


@pytest.mark.part11("11.10(f)")
def test_infusion_needs_lymphodepletion() -> None:
    with pytest.raises(errors.LymphodepletionRequired):
        released().infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 0)


def test_an_unreleased_lot_cannot_be_infused() -> None:
    treatment = depleted()
    good = infusion()
    bad = domain.Infusion(
        good.weight_kg,
        (domain.InfusedLot("LOT-9", Decimal("140000000")),),
        good.started_at,
        good.ended_at,
        good.administered_by,
    )
    with pytest.raises(errors.ProductNotReleased) as refused:
        treatment.infuse(ENROLLED, bad, RULES, cmd(), COHORT, 0)
    assert refused.value.details["lot_id"] == "LOT-9"


def test_the_dose_is_computed_from_cells_and_weight() -> None:
    assert cells_per_kg_millions(Decimal("140000000"), Decimal("70")) == Decimal("2.000")
    assert cells_per_kg_millions(Decimal("1.5e8"), Decimal("62.5")) == Decimal("2.400")


@pytest.mark.parametrize(
    ("cells", "accepted"),
    [
        ("126000000", True),  # 1.800 x10^6/kg: the lower edge of 2 +/- 10 %
        ("125930000", False),  # 1.799
        ("154000000", True),  # 2.200: the upper edge
        ("154070000", False),  # 2.201
        ("140000000", True),
        # past an edge by less than the display's 0.001: refused all the same
        ("125999930", False),  # 1.7999990, displays as 1.800
        ("154000070", False),  # 2.2000010, displays as 2.200
    ],
)
def test_dose_tolerance_at_its_edges(cells: str, accepted: bool) -> None:
    treatment = depleted()
    if accepted:
        treatment.infuse(ENROLLED, infusion(cells), RULES, cmd(), COHORT, 0)
        assert treatment.infusion is not None
    else:
        with pytest.raises(errors.DoseOutOfTolerance) as refused:
            treatment.infuse(ENROLLED, infusion(cells), RULES, cmd(), COHORT, 0)
        assert refused.value.details["assigned_level"] == 2
        assert refused.value.details["weight_kg"] == "70"


def test_a_dose_just_under_its_level_is_refused_though_it_displays_as_the_edge() -> None:
    """2.6996 x10^6/kg is 10.004 % under level 3: out, even though it shows as 2.700."""
    level_3 = CohortOpening(3, 3, COHORT.opened_at, 3)
    exact_edge = infusion(str(Decimal("2.7") * 70 * 1_000_000))
    depleted().infuse(domain.Enrollment("enrolled", 3), exact_edge, RULES, cmd(), level_3, 0)
    with pytest.raises(errors.DoseOutOfTolerance) as refused:
        just_under = infusion(str(Decimal("2.6996") * 70 * 1_000_000))
        depleted().infuse(domain.Enrollment("enrolled", 3), just_under, RULES, cmd(), level_3, 0)
    assert refused.value.details["cells_per_kg_millions"] == "2.700"  # as displayed


def test_the_dose_is_checked_against_the_assigned_level() -> None:
    level_4 = CohortOpening(4, 3, COHORT.opened_at, 3)
    with pytest.raises(errors.DoseOutOfTolerance):
        depleted().infuse(domain.Enrollment("enrolled", 4), infusion(), RULES, cmd(), level_4, 0)


def test_a_subject_of_a_level_no_review_has_opened_is_not_dosed() -> None:
    with pytest.raises(errors.CohortNotOpen) as refused:
        depleted().infuse(domain.Enrollment("enrolled", 3), infusion(), RULES, cmd(), COHORT, 0)
    assert refused.value.details == {"dose_level": 3, "open_level": 2}


@pytest.mark.part11("11.10(f)")
def test_no_dose_is_given_before_the_review_that_opened_its_cohort_in_clinical_time() -> None:
    """Recorded after the review, but dated (clinically) before it: refused."""
    start = infusion().started_at
    reviewed_later = CohortOpening(2, 3, COHORT.opened_at, 1, start + timedelta(hours=1))
    with pytest.raises(errors.CohortNotOpen) as refused:
        depleted().infuse(ENROLLED, infusion(), RULES, cmd(), reviewed_later, 0)
    assert refused.value.details["reviewed_at"] == (start + timedelta(hours=1)).isoformat()
    reviewed_at_start = CohortOpening(2, 3, COHORT.opened_at, 1, start)
    depleted().infuse(ENROLLED, infusion(), RULES, cmd(), reviewed_at_start, 0)


def test_a_full_cohort_waits_for_the_next_review() -> None:
    with pytest.raises(errors.CohortFull):
        depleted().infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 3)
    depleted().infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 2)


@pytest.mark.parametrize(("days", "accepted"), [(1, False), (2, True), (14, True), (15, False)])
def test_lymphodepletion_window_at_its_edges(days: int, accepted: bool) -> None:
    start = datetime.combine(LD_END + timedelta(days=days), datetime.min.time(), UTC)
    treatment = depleted()
    late_clock = command(start + timedelta(hours=2))
    if accepted:
        treatment.infuse(ENROLLED, infusion(start=start), RULES, late_clock, COHORT, 0)
    else:
        with pytest.raises(errors.OutsideLymphodepletionWindow) as refused:
            treatment.infuse(ENROLLED, infusion(start=start), RULES, late_clock, COHORT, 0)
        assert refused.value.details["days"] == days


def test_one_infusion_per_subject() -> None:
    treatment = depleted()
    treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 0)
    with pytest.raises(errors.AlreadyDone):
        treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 0)


def test_a_second_infusion_is_already_done_even_when_the_cohort_has_filled() -> None:
    """Not ``cohort_full``: the subject's own infusion counts among the cohort's doses."""
    treatment = depleted()
    treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 2)
    with pytest.raises(errors.AlreadyDone):
        treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 3)


def test_no_infusion_after_it_was_recorded_as_not_given() -> None:
    treatment = depleted()
    treatment.decline("fever on the day", cmd())
    with pytest.raises(errors.AlreadyDone):
        treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 0)


def test_an_infusion_cannot_end_before_it_starts_or_in_the_future() -> None:
    good = infusion()
    backwards = domain.Infusion(
        good.weight_kg, good.lots, good.started_at, good.started_at - timedelta(minutes=1), "x"
    )
    with pytest.raises(errors.InvalidMeasurement):
        depleted().infuse(ENROLLED, backwards, RULES, cmd(), COHORT, 0)
    future = domain.Infusion(
        good.weight_kg, good.lots, good.started_at, NOW + timedelta(minutes=1), "x"
    )
    with pytest.raises(errors.InvalidMeasurement):
        depleted().infuse(ENROLLED, future, RULES, cmd(), COHORT, 0)


def test_an_interruption_needs_an_infusion_and_a_reason() -> None:
    with pytest.raises(errors.OutOfSequence):
        depleted().interrupt("line occluded", cmd())
    treatment = depleted()
    treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 0)
    with pytest.raises(errors.ReasonRequired):
        treatment.interrupt("  ", cmd())
