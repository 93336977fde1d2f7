"""3+3 dose escalation over levels 1-4: every decision of the rules, from the subjects dosed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.adverse_events.errors import ExpansionRefused, InvalidEscalationInput, LevelNotOpen
from services.adverse_events.escalation import (
    COHORT,
    EXPANSION_TOTAL_AT_LEVEL,
    RULE_VERSION,
    CohortState,
    CohortSubject,
    Decision,
    Design,
    Expansion,
    allowed_level,
    expansion_size,
)
from services.adverse_events.escalation import decide as decide_by
from shared.study import study_definition

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)
FIRST = Design.of(study_definition())  # the first study's: levels 1-4, expansion to 15


def decide(
    subjects: list[CohortSubject],
    levels: tuple[int, ...] | None = None,
    expansion: Expansion | None = None,
    design: Design = FIRST,
) -> CohortState:
    """3+3 by the first study's design, unless the test names another."""
    return decide_by(subjects, levels, expansion, design=design)


def dosed(level: int, count: int, *, dlts: int = 0, open_windows: int = 0) -> list[CohortSubject]:
    """``count`` subjects at ``level``: the first ``dlts`` had a DLT, the last
    ``open_windows`` still have their DLT window open."""
    subjects = []
    for i in range(count):
        n = next(_ids)
        subjects.append(
            CohortSubject(
                subject_id=f"S-{n:03d}",
                dose_level=level,
                infused_at=START + timedelta(days=7 * n),
                dlt=i < dlts,
                window_closed=i < count - open_windows,
            )
        )
    return subjects


def summary(state: CohortState) -> tuple[int, Decision, int | None, int | None]:
    return state.level, state.decision, state.next_level, state.mtd


@pytest.mark.parametrize(
    ("subjects", "expected"),
    [
        # (level, decision, next level, MTD)
        ([], (1, Decision.ENROL_SAME_LEVEL, 1, None)),
        (dosed(1, 2), (1, Decision.ENROL_SAME_LEVEL, 1, None)),
        (dosed(1, 2, dlts=1, open_windows=2), (1, Decision.ENROL_SAME_LEVEL, 1, None)),
        (dosed(1, 3, open_windows=1), (1, Decision.WAIT, None, None)),
        (dosed(1, 3), (1, Decision.ESCALATE, 2, None)),
        (dosed(1, 3) + dosed(2, 1, open_windows=1), (2, Decision.ENROL_SAME_LEVEL, 2, None)),
        (dosed(1, 3) + dosed(2, 3, dlts=1), (2, Decision.EXPAND, 2, None)),
        (dosed(1, 3) + dosed(2, 3, dlts=1, open_windows=1), (2, Decision.WAIT, None, None)),
        (
            dosed(1, 3) + dosed(2, 4, dlts=1, open_windows=1),
            (2, Decision.ENROL_SAME_LEVEL, 2, None),
        ),
        (dosed(1, 3) + dosed(2, 6, dlts=1, open_windows=3), (2, Decision.WAIT, None, None)),
        (dosed(1, 3) + dosed(2, 6, dlts=1), (2, Decision.ESCALATE, 3, None)),
        (dosed(1, 3) + dosed(2, 6, dlts=1) + dosed(3, 3), (3, Decision.ESCALATE, 4, None)),
        (
            dosed(1, 3) + dosed(2, 3) + dosed(3, 3) + dosed(4, 2, open_windows=2),
            (4, Decision.ENROL_SAME_LEVEL, 4, None),
        ),
    ],
)
def test_3_plus_3_decision(
    subjects: list[CohortSubject], expected: tuple[int, Decision, int | None, int | None]
) -> None:
    assert summary(decide(subjects)) == expected


def test_no_dlt_in_3_at_level_1_escalates_to_level_2() -> None:
    state = decide(dosed(1, 3))
    assert (state.decision, allowed_level(state)) == (Decision.ESCALATE, 2)
    assert (state.dosed, state.dlts, state.open_windows) == (3, 0, 0)


def test_one_dlt_in_3_at_level_2_adds_3_at_level_2() -> None:
    state = decide(dosed(1, 3) + dosed(2, 3, dlts=1))
    assert (state.level, state.decision, allowed_level(state)) == (2, Decision.EXPAND, 2)
    assert (state.dosed, state.dlts) == (3, 1)


def test_one_dlt_in_6_at_level_2_escalates_to_level_3() -> None:
    state = decide(dosed(1, 3) + dosed(2, 6, dlts=1))
    assert (state.decision, allowed_level(state)) == (Decision.ESCALATE, 3)


def test_open_windows_make_the_next_cohort_wait() -> None:
    state = decide(dosed(1, 3, open_windows=2))
    assert (state.decision, allowed_level(state), state.open_windows) == (Decision.WAIT, None, 2)


def test_fewer_than_3_dosed_enrols_at_the_same_level() -> None:
    state = decide(dosed(1, 1, open_windows=1))
    assert (state.decision, allowed_level(state)) == (Decision.ENROL_SAME_LEVEL, 1)


def test_second_dlt_in_6_at_level_2_stops_with_mtd_1_when_level_1_had_6() -> None:
    state = decide(dosed(1, 6, dlts=1) + dosed(2, 6, dlts=2))
    assert summary(state) == (2, Decision.STOP, None, 1)
    assert (state.dosed, state.dlts) == (6, 2)


def test_second_dlt_at_level_2_with_3_at_level_1_adds_3_at_level_1_to_confirm_the_mtd() -> None:
    state = decide(dosed(1, 3) + dosed(2, 6, dlts=2))
    assert summary(state) == (2, Decision.STOP, 1, None)


def test_confirming_cohort_waits_for_every_window_to_close() -> None:
    state = decide(dosed(1, 3) + dosed(2, 4, dlts=2, open_windows=2))
    assert summary(state) == (2, Decision.STOP, None, None)


def test_confirming_cohort_fills_without_waiting_within_itself() -> None:
    state = decide(dosed(1, 4, open_windows=1) + dosed(2, 6, dlts=2))
    assert summary(state) == (2, Decision.STOP, 1, None)


def test_confirmed_level_1_with_at_most_1_dlt_in_6_is_the_mtd() -> None:
    state = decide(dosed(1, 6, dlts=1) + dosed(2, 3, dlts=2))
    assert summary(state) == (2, Decision.STOP, None, 1)


def test_confirmed_level_waits_for_its_windows_before_it_is_the_mtd() -> None:
    state = decide(dosed(1, 6, open_windows=3) + dosed(2, 3, dlts=2))
    assert summary(state) == (2, Decision.STOP, None, None)


def test_confirming_level_1_with_2_dlts_leaves_no_mtd() -> None:
    state = decide(dosed(1, 6, dlts=2) + dosed(2, 6, dlts=2))
    assert summary(state) == (1, Decision.STOP, None, None)


def test_confirming_level_2_with_2_dlts_goes_to_level_1() -> None:
    state = decide(dosed(1, 3) + dosed(2, 6, dlts=2) + dosed(3, 3, dlts=2))
    assert summary(state) == (2, Decision.STOP, 1, None)


def test_two_dlts_stop_at_once_even_before_the_cohort_is_full() -> None:
    state = decide(dosed(1, 3) + dosed(2, 2, dlts=2, open_windows=2))
    assert (state.level, state.decision, state.dosed, state.dlts) == (2, Decision.STOP, 2, 2)


def test_two_dlts_at_level_1_stop_without_an_mtd() -> None:
    state = decide(dosed(1, 3, dlts=2))
    assert summary(state) == (1, Decision.STOP, None, None)


def test_level_4_cleared_with_0_of_3_completes_without_an_mtd() -> None:
    state = decide(dosed(1, 3) + dosed(2, 3) + dosed(3, 3) + dosed(4, 3))
    assert summary(state) == (4, Decision.COMPLETE, None, None)


def test_level_4_cleared_with_1_of_6_completes_with_mtd_4() -> None:
    state = decide(dosed(1, 3) + dosed(2, 3) + dosed(3, 3) + dosed(4, 6, dlts=1))
    assert summary(state) == (4, Decision.COMPLETE, None, 4)


def test_level_4_with_open_windows_waits() -> None:
    state = decide(dosed(1, 3) + dosed(2, 3) + dosed(3, 3) + dosed(4, 3, open_windows=1))
    assert summary(state) == (4, Decision.WAIT, None, None)


def test_state_records_the_rule_version() -> None:
    assert decide([]).rule_version == RULE_VERSION == "NCT05030779/def-1/escalation/2"


def test_custom_levels_are_walked_in_order() -> None:
    assert summary(decide(dosed(2, 3), levels=(2, 3))) == (2, Decision.ESCALATE, 3, None)


@pytest.mark.parametrize(
    "subjects",
    [
        dosed(1, 2) + dosed(2, 1),  # level 1 not full
        dosed(1, 3, open_windows=1) + dosed(2, 1),  # level 1 not judged
        dosed(1, 3, dlts=1) + dosed(2, 1),  # 1/3 at level 1 needs 3 more first
        dosed(1, 3) + dosed(3, 1),  # level 2 skipped
    ],
)
def test_refuses_subjects_dosed_above_a_level_not_cleared(subjects: list[CohortSubject]) -> None:
    with pytest.raises(LevelNotOpen) as refused:
        decide(subjects)
    assert refused.value.code == "level_not_open"


def test_refuses_a_stop_above_a_level_never_filled() -> None:
    with pytest.raises(LevelNotOpen):
        decide(dosed(1, 2) + dosed(2, 3, dlts=2))


def test_refuses_a_dose_level_outside_the_protocol() -> None:
    with pytest.raises(InvalidEscalationInput):
        decide(dosed(5, 1))


def test_refuses_a_subject_counted_twice() -> None:
    subject = dosed(1, 1)[0]
    with pytest.raises(InvalidEscalationInput):
        decide([subject, subject])


def test_refuses_more_than_6_at_a_level() -> None:
    with pytest.raises(InvalidEscalationInput):
        decide(dosed(1, 7))


@pytest.mark.parametrize("levels", [(), (2, 1), (1, 1, 2)])
def test_refuses_levels_that_are_not_ascending(levels: tuple[int, ...]) -> None:
    with pytest.raises(InvalidEscalationInput):
        decide([], levels=levels)


def expansion_after(subjects: list[CohortSubject], level: int = 1) -> Expansion:
    """An expansion opened a day after the last of ``subjects`` was dosed."""
    last = max(s.infused_at for s in subjects)
    return Expansion(level, last + timedelta(days=1), EXPANSION_TOTAL_AT_LEVEL - COHORT)


def expanding(level: int, count: int, after: Expansion) -> list[CohortSubject]:
    return [
        CohortSubject(f"X-{n}", level, after.reviewed_at + timedelta(days=n), False, False)
        for n in range(count)
    ]


def test_the_design_treats_15_at_the_level_chosen_for_expansion() -> None:
    assert EXPANSION_TOTAL_AT_LEVEL == 15  # Feng et al., Nat Med 2025: 15 treated


def test_an_expansion_at_a_cleared_level_doses_up_to_the_designs_total() -> None:
    assert expansion_size(decide(dosed(1, 3)), 1, EXPANSION_TOTAL_AT_LEVEL) == 12
    assert (
        expansion_size(decide(dosed(1, 3) + dosed(2, 6, dlts=1)), 2, EXPANSION_TOTAL_AT_LEVEL) == 9
    )
    assert expansion_size(decide(dosed(1, 3)), 1, total=20) == 17


@pytest.mark.parametrize(
    ("subjects", "level"),
    [
        (dosed(1, 3, open_windows=1), 1),  # a window is open
        (dosed(1, 3, dlts=1), 1),  # 1/3: not cleared
        (dosed(1, 2), 1),  # not full
        (dosed(1, 3), 2),  # never dosed
        (dosed(1, 3) + dosed(2, 6, dlts=2), 2),  # exceeded
    ],
)
def test_refuses_an_expansion_at_a_level_not_cleared(
    subjects: list[CohortSubject], level: int
) -> None:
    with pytest.raises(ExpansionRefused):
        expansion_size(decide(subjects), level, EXPANSION_TOTAL_AT_LEVEL)


def test_refuses_an_expansion_larger_than_nothing() -> None:
    with pytest.raises(ExpansionRefused):
        expansion_size(decide(dosed(1, 3)), 1, total=3)


def test_the_expansion_cohort_is_not_a_3_plus_3_cohort_and_doses_until_full() -> None:
    escalation = dosed(1, 3)
    opened = expansion_after(escalation)
    state = decide(escalation + expanding(1, 11, opened), expansion=opened)
    assert (state.decision, state.next_level, state.dosed, state.expansion_dosed) == (
        Decision.DOSE_EXPANSION, 1, 14, 11,
    )  # fmt: skip
    full = decide(escalation + expanding(1, 12, opened), expansion=opened)
    assert (full.decision, full.next_level, full.dosed) == (Decision.DOSE_EXPANSION, None, 15)


def test_no_second_expansion_once_one_is_open() -> None:
    escalation = dosed(1, 3)
    opened = expansion_after(escalation)
    with pytest.raises(ExpansionRefused):
        expansion_size(decide(escalation, expansion=opened), 1, EXPANSION_TOTAL_AT_LEVEL)


def test_each_study_escalates_over_its_own_levels_and_expands_to_its_own_total() -> None:
    # SYN-CART-2 (synthetic) has three dose levels and an expansion to 12 at a level;
    # NCT05030779 four levels and 15
    other = Design.of(study_definition("SYN-CART-2"))
    cleared_to_3 = dosed(1, 3) + dosed(2, 3) + dosed(3, 6)

    first_state, other_state = decide(cleared_to_3), decide(cleared_to_3, design=other)

    assert summary(first_state) == (3, Decision.ESCALATE, 4, None)
    assert summary(other_state) == (3, Decision.COMPLETE, None, 3)
    assert other_state.rule_version == study_definition("SYN-CART-2").rule_version("escalation", 2)
    assert first_state.rule_version == RULE_VERSION
    assert expansion_size(first_state, 3, FIRST.expansion_total_at_level) == 15 - 6
    assert expansion_size(other_state, 3, other.expansion_total_at_level) == 12 - 6
