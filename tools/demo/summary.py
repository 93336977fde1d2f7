"""The trial as the auditor reads it back from the ledger (projections API): the 3+3
summary, the endpoints, each subject's state, ``verify``, and the export written to a
file; and the same printed as tables."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tools.demo.client import Session, wait_for
from tools.demo.plan import Story

QUIET_SECONDS = 3.0  # the ledger has taken everything when it stops growing this long


@dataclass(frozen=True)
class Summary:
    """What the demo printed, for a caller (the test) to check."""

    seed: int
    trial: dict[str, Any]  # GET /trial
    endpoints: dict[str, Any]  # GET /endpoints
    subjects: dict[str, dict[str, Any]]  # GET /subjects/{id}, each screened subject
    verify: dict[str, Any]  # GET /verify
    export: Path
    exported_entries: int

    @property
    def verified(self) -> bool:
        return bool(self.verify["ok"])

    def with_status(self, status: str) -> list[str]:
        return sorted(s for s, state in self.subjects.items() if state.get("status") == status)

    @property
    def corrections(self) -> int:
        return sum(int(state.get("corrections", 0)) for state in self.subjects.values())

    def figures(self) -> dict[str, str]:
        """The headline figures, as printed."""
        e = self.endpoints
        levels = self.trial["dose_levels"]
        figures = {
            "subjects screened": str(len(self.subjects)),
            "screen failures": ", ".join(self.with_status("screen_failed")) or "none",
            "subjects infused": str(e["subjects_infused"]),
            **{f"DLT rate, dose level {k}": v["dlt_rate"] for k, v in levels.items()},
            "3+3 decisions": ", ".join(
                f"{d['decision']} to level {d['approved_level']}"
                for d in self.trial["cohort_decisions"]
            ),
            "TEAE incidence": _rate(e["teae_incidence"]),
            "objective response within 3 months": _rate(e["objective_response_rate_3_months"]),
            "disease control from day 28": _rate(e["disease_control_rate_from_day_28"]),
            "progression-free survival": _km(e["progression_free_survival"]),
            "overall survival": _km(e["overall_survival"]),
            "duration of remission": _km(e["duration_of_remission"]),
            "withdrawals": ", ".join(self.with_status("withdrawn")) or "none",
            "corrections": str(self.corrections),
        }
        return figures


def _rate(figure: dict[str, Any]) -> str:
    return f"{figure['numerator']}/{figure['denominator']} ({figure['rate']})"


def _km(figure: dict[str, Any]) -> str:
    events = sum(step["events"] for step in figure["steps"])
    median = figure["median_days"]
    last = figure["steps"][-1]["exact"] if figure["steps"] else "1"
    return (f"{events} event(s) in {len(figure['subjects'])}; S = {last} at the last step; "
            f"median {'not reached' if median is None else f'{median} days'}")  # fmt: skip


async def settle(auditor: Session, story: Story) -> None:
    """Wait until the ledger holds the whole story: every infusion and safety review in
    the trial view, the ledger no longer growing, and a signed checkpoint covering it."""
    infused = sum(1 for s in story.subjects if s.level is not None)
    state = {"entries": -1, "since": time.monotonic()}

    async def settled() -> bool:
        trial = await auditor.get("projections", "/trial")
        report = await auditor.get("projections", "/verify")
        if report["entries"] != state["entries"]:
            state.update(entries=report["entries"], since=time.monotonic())
        dosed = sum(level["dosed"] for level in trial["dose_levels"].values())
        return (dosed == infused and len(trial["cohort_decisions"]) == len(story.cohorts)
                and report["latest_checkpoint"] == report["entries"]
                and time.monotonic() - state["since"] >= QUIET_SECONDS)  # fmt: skip

    await wait_for(settled, "the ledger to take every event and checkpoint them",
                   auditor.api.patience)  # fmt: skip


async def collect(auditor: Session, story: Story, export: Path) -> Summary:
    """Read the trial back as the auditor, and write the export to ``export``."""
    await settle(auditor, story)
    subjects = {s.subject_id: await auditor.get("projections", f"/subjects/{s.subject_id}")
                for s in story.subjects}  # fmt: skip
    trial = await auditor.get("projections", "/trial")
    endpoints = await auditor.get("projections", "/endpoints")
    verify = await auditor.get("projections", "/verify")
    copy = await auditor.get("projections", "/export")
    await asyncio.to_thread(_write, export, copy)
    return Summary(story.seed, trial, endpoints, subjects, verify, export, len(copy["entries"]))


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True))


def render(summary: Summary, console: Console) -> None:
    figures = Table(title=f"NCT05030779 demo trial (seed {summary.seed})", show_header=False)
    for name, value in summary.figures().items():
        figures.add_row(name, value)
    console.print(figures)
    console.print(_subject_table(summary))
    v = summary.verify
    verdict = "[green]OK[/green]" if summary.verified else f"[red]FAILED[/red] {v['findings']}"
    console.print(f"verify: {verdict}: {v['entries']} ledger entries, "
                  f"{v['checkpoints_checked']} signed checkpoints checked, the latest over "
                  f"{v['latest_checkpoint']} entries")  # fmt: skip
    console.print(f"auditor export: {summary.export} ({summary.exported_entries} entries, "
                  "each with its inclusion proof)")  # fmt: skip


def _subject_table(summary: Summary) -> Table:
    table = Table(
        title="Subjects, as the ledger tells them",
        caption="dose: x10^6 CAR-T cells/kg; CRS: worst ASTCT grade; ORR: complete or "
        "partial remission by day 90; Cmax: blood qPCR, copies/ug gDNA (study day)",
    )
    for column in ("subject", "status", "level", "dose", "CRS", "DLT", "ORR", "Cmax"):
        table.add_column(column)
    responders = set(summary.endpoints["objective_response_rate_3_months"]["subjects"])
    courses = summary.endpoints["time_courses"]
    for sid, state in sorted(summary.subjects.items()):
        infusion = state.get("infusion") or {}
        blood = courses.get(sid, {}).get("car_t_kinetics", {}).get("peripheral_blood/qpcr/total")
        table.add_row(
            sid, state.get("status", "?"), str(state.get("dose_level") or "-"),
            infusion.get("cells_per_kg_millions", "-"),
            str((state.get("safety") or {}).get("worst_crs", "-")),
            "yes" if state.get("dlt") else "-",
            ("yes" if sid in responders else "no") if infusion else "-",
            f"{blood['cmax']} (d{blood['tmax_study_day']})" if blood else "-",
        )  # fmt: skip
    return table
