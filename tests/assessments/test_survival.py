"""Kaplan-Meier against a small cohort computed by hand, with censoring and a tie."""

from __future__ import annotations

from fractions import Fraction

import pytest

from services.projections.survival import Observation, kaplan_meier

# subject, days, event (False: censored). By hand:
#   day 10: 6 at risk, 1 event          S = 5/6
#   day 20: 5 at risk, 1 event, 1 cens. S = 5/6 * 4/5 = 2/3  (the censored one counts)
#   day 35: 3 at risk, 1 event          S = 2/3 * 2/3 = 4/9  <= 1/2: the median
#   day 50: 2 at risk, 1 censored       S = 4/9
#   day 60: 1 at risk, 1 event          S = 0
COHORT = [("A", 10, True), ("B", 20, False), ("C", 20, True), ("D", 35, True),
          ("E", 50, False), ("F", 60, True)]  # fmt: skip


def test_product_limit_by_hand() -> None:
    estimate = kaplan_meier(Observation(*row) for row in reversed(COHORT))
    assert [(s.time, s.at_risk, s.events, s.censored, s.survival) for s in estimate.steps] == [
        (10, 6, 1, 0, Fraction(5, 6)),
        (20, 5, 1, 1, Fraction(2, 3)),
        (35, 3, 1, 0, Fraction(4, 9)),
        (50, 2, 0, 1, Fraction(4, 9)),
        (60, 1, 1, 0, Fraction(0)),
    ]
    assert estimate.median == 35
    assert estimate.survival_at(9) == 1
    assert estimate.survival_at(34) == Fraction(2, 3)


def test_all_censored_has_no_median_and_stays_at_one() -> None:
    estimate = kaplan_meier([Observation("A", 30, False), Observation("B", 90, False)])
    assert estimate.median is None
    assert estimate.survival_at(100) == 1


def test_negative_times_are_refused() -> None:
    with pytest.raises(ValueError, match="not negative"):
        kaplan_meier([Observation("A", -1, True)])
