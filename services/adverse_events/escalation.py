"""3+3 dose escalation over the protocol's dose levels, as a pure function of the
subjects dosed so far: the conventional 3+3 design (Le Tourneau, Lee and Siu, J Natl
Cancer Inst 2009; docs/adverse_events.md).

- Cohorts of 3 at a level. 0/3 DLT: escalate. 1/3: 3 more at the same level. 1/6:
  escalate. 2 or more DLTs among the 3 or 6: the level exceeds the maximum tolerated
  dose (MTD) and escalation stops, as soon as the second DLT is known.
- A level is judged only when its 3 (or 6) subjects all have closed DLT windows; a new
  cohort (the next level, or 3 more at a level) doses only when every dosed subject's
  window has closed. Within a cohort, subjects dose without waiting for each other.
- MTD = the highest level with at most 1 DLT in 6 treated, below the level that was
  exceeded. When escalation stops and the level below had only 3 treated, 3 more are
  treated there to confirm it (and if that level then exceeds, the search goes one
  level lower). A level cleared with 0/3 is never reported as the MTD.

Dose expansion (Feng et al., Nat Med 2025: 15 subjects treated): once escalation has
cleared a level, a signed review may open a dose-expansion cohort there, which brings the
subjects treated at that level to ``EXPANSION_TOTAL_AT_LEVEL`` (the escalation cohorts
included). Its subjects (dosed at the level from the expansion review on) are not 3+3
cohorts: escalation ends, and the cap on infusions is the expansion's size.

The DLT itself (which toxicities, adjudicated by whom) is decided elsewhere; here a
subject either had one (``dlt``) or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from itertools import pairwise

from services.adverse_events.errors import ExpansionRefused, InvalidEscalationInput, LevelNotOpen
from shared.study import StudyDefinition, study_definition

# /2: the DLT windows it waits for close when the study's day 29 begins, the infusion's
# date + 29 days (infusion = day 0; /1 counted the infusion as day 1, + 28 days); and the
# dose-expansion cohort. The study and its definition's version are named in it.
REVISION = 2
RULE_VERSION = study_definition().rule_version("escalation", REVISION)


@dataclass(frozen=True)
class Design:
    """A study's escalation design, from its definition's "dosing" and "escalation"
    sections (change it there, under a new definition_version): its dose levels, the 3+3
    cohort sizes, the DLTs at which a level exceeds, the subjects an expansion brings its
    level to, and the rule version its decisions record (naming the study)."""

    levels: tuple[int, ...]
    cohort: int
    expanded_cohort: int
    dlts_exceeding: int
    expansion_total_at_level: int
    rule_version: str

    @classmethod
    def of(cls, definition: StudyDefinition) -> Design:
        design = definition.escalation
        return cls(
            definition.dose_levels,
            design.cohort_size,
            design.expanded_cohort_size,
            design.dlts_exceeding,
            design.expansion_total_at_level,
            definition.rule_version("escalation", REVISION),
        )


# The deployment's first study's design, by the names it had before studies were data
# (no function below defaults to it: each takes the design of the study it acts in).
DESIGN = Design.of(study_definition())
DOSE_LEVELS = DESIGN.levels  # NCT05030779: 1-4 x10^6 CAR-T cells/kg
COHORT = DESIGN.cohort
EXPANDED_COHORT = DESIGN.expanded_cohort
DLTS_EXCEEDING = DESIGN.dlts_exceeding
# Subjects treated in all at the level chosen for expansion, its escalation cohorts
# included (NCT05030779: Feng et al. treated 15).
EXPANSION_TOTAL_AT_LEVEL = DESIGN.expansion_total_at_level


@dataclass(frozen=True)
class CohortSubject:
    """A dosed subject: the level received, whether a DLT was adjudicated, and whether
    the DLT window has closed."""

    subject_id: str
    dose_level: int
    infused_at: datetime
    dlt: bool
    window_closed: bool


class Decision(StrEnum):
    """What the 3+3 rules allow next."""

    ENROL_SAME_LEVEL = "enrol_same_level"  # the cohort (3 or 6) is not full yet
    WAIT = "wait"  # the cohort is full, some DLT window is open
    ESCALATE = "escalate"  # 0/3 or at most 1/6: the next level opens
    EXPAND = "expand"  # 1/3: 3 more at the same level
    STOP = "stop"  # 2 or more DLTs: the level exceeds the MTD, escalation stops
    COMPLETE = "complete"  # the highest level was cleared
    DOSE_EXPANSION = "dose_expansion"  # escalation ended; the expansion cohort doses


@dataclass(frozen=True)
class Expansion:
    """The dose-expansion cohort a signed review opened: at which level, from when
    (clinical time) and how many subjects it may dose."""

    level: int
    reviewed_at: datetime
    size: int


def expansion_size(state: CohortState, level: int, total: int) -> int:
    """How many subjects an expansion at ``level`` may dose, if the 3+3 state allows one
    there: escalation cleared ``level`` (every window closed) and has not ended; the
    expansion brings the level to ``total`` (its study's design's).
    ExpansionRefused otherwise."""
    if state.decision is Decision.DOSE_EXPANSION:
        raise ExpansionRefused(
            f"a dose-expansion cohort is open at level {state.level} already",
            open_level=state.level,
        )
    if state.open_windows:
        raise ExpansionRefused(
            f"{state.open_windows} DLT window(s) are still open",
            open_windows=state.open_windows,
        )
    tally = dict(zip(state.levels_cleared, state.dosed_at_cleared, strict=True))
    if level not in tally:
        raise ExpansionRefused(
            f"level {level} has not been cleared by 3+3 (cleared: {list(tally)})",
            level=level,
            cleared=list(tally),
        )
    size = total - tally[level]
    if size < 1:
        raise ExpansionRefused(
            f"level {level} has {tally[level]} subjects; the design treats {total} there",
            level=level,
            dosed=tally[level],
        )
    return size


@dataclass(frozen=True)
class CohortState:
    """The 3+3 state at ``level``: the highest level in play, or, once escalation has
    stopped, the lowest level that exceeded the MTD.

    ``dosed`` and ``dlts`` count the subjects at ``level``; ``open_windows`` counts the
    open DLT windows of every dosed subject. ``next_level`` is the level the next subject
    may receive, None while windows must close first or when no more subjects are dosed.
    ``mtd`` is set once it is known (only after STOP, or on COMPLETE with 6 treated at the
    highest level).
    """

    level: int
    decision: Decision
    next_level: int | None
    dosed: int
    dlts: int
    open_windows: int
    mtd: int | None
    rule_version: str  # its study's design's
    levels_cleared: tuple[int, ...] = ()  # by 3+3 (0/3, or at most 1/6; windows closed)
    dosed_at_cleared: tuple[int, ...] = ()  # subjects at each of them
    dlts_at_cleared: tuple[int, ...] = ()  # and their DLTs
    expansion_dosed: int = 0  # subjects of the dose-expansion cohort


@dataclass(frozen=True)
class _Level:
    dosed: int
    dlts: int
    open_windows: int
    design: Design

    @property
    def exceeded(self) -> bool:
        return self.dlts >= self.design.dlts_exceeding

    @property
    def cleared(self) -> bool:
        """0/3, or at most 1/6, every window closed."""
        if self.open_windows or self.exceeded:
            return False
        return (self.dosed == self.design.cohort and self.dlts == 0) or (
            self.dosed == self.design.expanded_cohort
        )


def decide(
    subjects: Sequence[CohortSubject],
    levels: Sequence[int] | None = None,
    expansion: Expansion | None = None,
    *,
    design: Design,
) -> CohortState:
    """The 3+3 decision for the subjects dosed so far by ``design`` (its study's) over
    its levels (or ``levels``); see the module's rules.
    Once a dose-expansion cohort is open, the decision is DOSE_EXPANSION: its level, its
    subjects so far, and the level again while it has room."""
    levels = design.levels if levels is None else levels
    if expansion is None:
        return _escalation(subjects, levels, design)
    expanding = [
        s
        for s in subjects
        if s.dose_level == expansion.level and s.infused_at >= expansion.reviewed_at
    ]
    escalated = _escalation([s for s in subjects if s not in expanding], levels, design)
    at_level = [s for s in subjects if s.dose_level == expansion.level]
    return replace(
        escalated,
        level=expansion.level,
        decision=Decision.DOSE_EXPANSION,
        next_level=expansion.level if len(expanding) < expansion.size else None,
        dosed=len(at_level),
        dlts=sum(1 for s in at_level if s.dlt),
        open_windows=sum(1 for s in subjects if not s.window_closed),
        expansion_dosed=len(expanding),
    )


def _escalation(
    subjects: Sequence[CohortSubject], levels: Sequence[int], design: Design
) -> CohortState:
    state = _decide(subjects, levels, design)
    tally = _tally(subjects, levels, design)
    cleared = [(level, at) for level, at in zip(levels, tally, strict=True) if at.cleared]
    return replace(
        state,
        levels_cleared=tuple(level for level, _ in cleared),
        dosed_at_cleared=tuple(at.dosed for _, at in cleared),
        dlts_at_cleared=tuple(at.dlts for _, at in cleared),
    )


def _decide(
    subjects: Sequence[CohortSubject], levels: Sequence[int], design: Design
) -> CohortState:
    tally = _tally(subjects, levels, design)
    open_windows = sum(1 for s in subjects if not s.window_closed)

    def state(
        index: int, decision: Decision, next_level: int | None, mtd: int | None = None
    ) -> CohortState:
        at = tally[index]
        return CohortState(
            levels[index], decision, next_level, at.dosed, at.dlts, open_windows, mtd,
            design.rule_version,
        )  # fmt: skip

    exceeded = [index for index, at in enumerate(tally) if at.exceeded]
    if exceeded:
        index = exceeded[0]
        mtd, next_level = _below_exceeded(index, tally, levels, open_windows, design)
        return state(index, Decision.STOP, next_level, mtd)

    # Below the level returned, every level is cleared, so every window there is closed.
    for index, at in enumerate(tally):
        higher = tally[index + 1 :]
        if at.cleared and higher and higher[0].dosed:
            continue
        if any(h.dosed for h in higher):
            raise LevelNotOpen(
                f"subjects were dosed above level {levels[index]}, which 3+3 has not cleared",
                level=levels[index],
            )
        if at.cleared and higher:
            return state(index, Decision.ESCALATE, levels[index + 1])
        if at.cleared:
            mtd = levels[index] if at.dosed == design.expanded_cohort else None
            return state(index, Decision.COMPLETE, None, mtd)
        if at.dosed in (design.cohort, design.expanded_cohort):
            if at.open_windows:
                return state(index, Decision.WAIT, None)
            # 3 subjects, windows closed, not cleared and not exceeded: 1/3
            return state(index, Decision.EXPAND, levels[index])
        return state(index, Decision.ENROL_SAME_LEVEL, levels[index])
    raise AssertionError("unreachable: the loop returns at the last level at the latest")


def allowed_level(state: CohortState) -> int | None:
    """The dose level the next subject may receive, or None if no subject may be dosed now."""
    return state.next_level


def _below_exceeded(
    index: int, tally: Sequence[_Level], levels: Sequence[int], open_windows: int, design: Design
) -> tuple[int | None, int | None]:
    """(MTD, next level) once ``levels[index]`` exceeded: the level below is the MTD if
    it has 6 treated with windows closed; with only 3 treated, 3 more confirm it, the
    first of them once every window has closed. Below the lowest level there is no MTD."""
    if index == 0:
        return None, None
    below, level_below = tally[index - 1], levels[index - 1]
    if below.dosed < design.cohort:
        raise LevelNotOpen(
            f"level {levels[index]} was dosed before level {level_below} was cleared",
            level=levels[index],
        )
    if below.dosed == design.expanded_cohort:
        return (None, None) if below.open_windows else (level_below, None)
    if below.dosed == design.cohort and open_windows:
        return None, None  # the confirming 3 are a new cohort: windows close first
    return None, level_below


def _tally(
    subjects: Sequence[CohortSubject], levels: Sequence[int], design: Design
) -> list[_Level]:
    if not levels or any(b <= a for a, b in pairwise(levels)):
        raise InvalidEscalationInput(
            f"dose levels {list(levels)!r} must be ascending and not empty", levels=list(levels)
        )
    seen: set[str] = set()
    for subject in subjects:
        if subject.subject_id in seen:
            raise InvalidEscalationInput(
                f"subject {subject.subject_id} is counted twice", subject_id=subject.subject_id
            )
        seen.add(subject.subject_id)
        if subject.dose_level not in levels:
            raise InvalidEscalationInput(
                f"subject {subject.subject_id}: dose level {subject.dose_level!r} is not one "
                f"of {list(levels)!r}",
                subject_id=subject.subject_id,
                dose_level=subject.dose_level,
            )
    tally = []
    for level in levels:
        at = [s for s in subjects if s.dose_level == level]
        if len(at) > design.expanded_cohort:
            raise InvalidEscalationInput(
                f"level {level} has {len(at)} subjects; 3+3 treats at most "
                f"{design.expanded_cohort}",
                level=level,
                dosed=len(at),
            )
        tally.append(
            _Level(
                dosed=len(at),
                dlts=sum(1 for s in at if s.dlt),
                open_windows=sum(1 for s in at if not s.window_closed),
                design=design,
            )
        )
    return tally
