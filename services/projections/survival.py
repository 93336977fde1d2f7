"""Kaplan-Meier estimates (no I/O): product-limit survival over right-censored times.

At a time where both happen, events are counted before censorings: a subject censored
on the day of another's event was still at risk for it (the usual convention).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Observation:
    """One subject's follow-up: time from the origin, and whether it ended in the event
    (False: censored then)."""

    subject_id: str
    time: int  # days
    event: bool


@dataclass(frozen=True)
class Step:
    time: int
    at_risk: int
    events: int
    censored: int
    survival: Fraction  # exact; shown rounded


@dataclass(frozen=True)
class KaplanMeier:
    steps: tuple[Step, ...]
    median: int | None  # first time the estimate falls to 0.5 or below; None: not reached

    def survival_at(self, time: int) -> Fraction:
        """S(t): the estimate just after ``time``."""
        current = Fraction(1)
        for step in self.steps:
            if step.time > time:
                break
            current = step.survival
        return current


def kaplan_meier(observations: Iterable[Observation]) -> KaplanMeier:
    data = sorted(observations, key=lambda o: o.time)
    if any(o.time < 0 for o in data):
        raise ValueError("follow-up times are not negative")
    at_risk, survival, steps = len(data), Fraction(1), []
    for time in sorted({o.time for o in data}):
        events = sum(1 for o in data if o.time == time and o.event)
        censored = sum(1 for o in data if o.time == time and not o.event)
        if events:
            survival *= Fraction(at_risk - events, at_risk)
        steps.append(Step(time, at_risk, events, censored, survival))
        at_risk -= events + censored
    median = next((s.time for s in steps if s.events and s.survival <= Fraction(1, 2)), None)
    return KaplanMeier(tuple(steps), median)
