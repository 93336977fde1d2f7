"""The demo from start to end: the team, the three cohorts with their safety reviews,
the follow-up, and the auditor's summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from rich.console import Console

from tools.demo.client import Api, Credentials, DemoError
from tools.demo.enrollment import enrol, screen, treat
from tools.demo.follow_up import follow_up
from tools.demo.plan import Cohort, Story, SubjectPlan
from tools.demo.safety import adverse_events, review
from tools.demo.story import SEED, write_story
from tools.demo.summary import Summary, collect, render
from tools.demo.team import Team, assemble

Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    urls: dict[str, str]  # service name -> base URL
    administrator: Credentials
    seed: int = SEED
    export: Path = field(default=Path(".local/demo-export.json"))
    patience: float = 60.0  # seconds, for each wait on an eventually consistent view


async def run_demo(options: Options, console: Console) -> Summary:
    """Run the whole story against the services, print the summary, and return it."""
    story = write_story(options.seed)
    api = Api(options.urls, options.patience)
    try:
        team = await assemble(api, options.administrator)
        await _refuse_unless_fresh(team)
        await run_trial(team, story, console.print)
        console.print("The auditor reads the trial back from the ledger...")
        summary = await collect(team.auditor, story, options.export)
        for session in team.everyone:
            await session.log_out()
    finally:
        await api.aclose()
    render(summary, console)
    return summary


def _dose(plan: SubjectPlan) -> Decimal:
    assert plan.treatment is not None  # noqa: S101  (only dosed subjects are treated)
    cells = sum(n for _, n in plan.treatment.cells)
    return Decimal(cells) / Decimal(plan.treatment.weight_kg) / 1_000_000


async def _refuse_unless_fresh(team: Team) -> None:
    state = await team.investigator.get("adverse_events", "/cohort")
    if state["dosed"] or state["reviews"]:
        raise DemoError("this trial has dosed subjects or safety reviews already; the demo "
                        "needs a fresh trial (see docs/operations.md, Demo trial)")  # fmt: skip


async def run_trial(team: Team, story: Story, say: Say) -> None:
    screened: set[str] = set()
    for number, cohort in enumerate(story.cohorts, 1):
        for sid in story.screen_failures:  # screened while this cohort recruits
            if sid not in screened and sid < cohort.subject_ids[0]:
                decision = await screen(team, story.plan(sid))
                failed = ", ".join(decision["eligibility"]["failed_criteria"])
                say(f"{sid} screened: {decision['status']} ({failed})")
                screened.add(sid)
        await _cohort(team, story, cohort, number, say)
    for plan in story.subjects:
        if plan.level is not None:
            await follow_up(team, plan)
            say(f"{plan.subject_id} followed up: {len(plan.visits)} visits, "
                f"{len(plan.kinetics)} kinetics samples")  # fmt: skip


async def _cohort(team: Team, story: Story, cohort: Cohort, number: int, say: Say) -> None:
    """Enrol and infuse the cohort, record its adverse events, then review it."""
    for sid in cohort.subject_ids:
        plan = story.plan(sid)
        await screen(team, plan)
        await enrol(team, plan)
        await treat(team, plan)
        say(f"cohort {number}: {sid} infused at dose level {cohort.level} "
            f"({_dose(plan):.2f} x10^6 CAR-T cells/kg)")  # fmt: skip
    for sid in cohort.subject_ids:
        await adverse_events(team, story.plan(sid))
    approved = await review(team, cohort, story.review_time(cohort))
    say(f"cohort {number}: {cohort.dlts} DLT(s) in {cohort.dosed} at level {cohort.level}: "
        f"{cohort.decision}; safety review {approved['review']} signed, level "
        f"{approved['approved_level']} open")  # fmt: skip
