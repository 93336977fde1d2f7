"""`make demo` end to end: the demo drives the nine-subject trial through the six real
services (real Kafka and PostgreSQL), then its printed summary, its verify and its
export must be the ones the story decides.

By hand, from tools/demo/story.py (the same for every seed):
  screened S-001..S-010; S-004 fails on platelets; nine infused.
  DLTs: level 1 0/3; level 2 1/6 (S-006, grade 3 CRS). Reviews: escalate to 2, expand
  at 2, escalate to 3.
  TEAE: every infused subject but S-009 (nausea before the infusion) = 8/9.
  ORR (complete or partial by study day 90): all but S-008 (stable, stable) = 8/9.
  Disease control at the first response from day 28 (month 1): 9/9.
  PFS: S-007 censored at day 89 (withdrawn after month 3), S-010's flare at day 149
    (1 event among 8 at risk: 7/8), the rest censored at day 180.
  OS: no death; censored at 89 (S-007) and 180.
  Corrections: 1 (S-005's creatinine); withdrawals: S-007.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack
from tools.demo.client import Credentials, DemoError
from tools.demo.run import Options, run_demo
from tools.demo.story import SEED, write_story

pytestmark = pytest.mark.integration


def options(stack: Stack, export: Path) -> Options:
    urls = {name: f"http://127.0.0.1:{p.port}" for name, p in stack.processes.items()}
    return Options(urls, Credentials(ADMIN, ADMIN_PASSWORD), SEED, export, patience=60)


async def test_demo_runs_the_trial_and_prints_its_figures_and_a_passing_verify(
    stack: Stack, tmp_path: Path
) -> None:
    printed = io.StringIO()
    summary = await run_demo(options(stack, tmp_path / "export.json"), Console(file=printed))

    figures = summary.figures()
    assert (figures["subjects screened"], figures["screen failures"]) == ("10", "S-004")
    assert summary.subjects["S-004"]["eligibility"]["failed_criteria"] == ["platelets"]
    assert figures["subjects infused"] == "9"
    assert (figures["DLT rate, dose level 1"], figures["DLT rate, dose level 2"]) == ("0/3", "1/6")
    assert figures["3+3 decisions"] == "escalate to level 2, expand to level 2, escalate to level 3"
    assert figures["TEAE incidence"] == "8/9 (0.889)"
    assert figures["objective response within 3 months"] == "8/9 (0.889)"
    assert figures["disease control from day 28"] == "9/9 (1.000)"
    assert (figures["withdrawals"], figures["corrections"]) == ("S-007", "1")
    pfs = summary.endpoints["progression_free_survival"]["steps"]
    assert [(s["day"], s["at_risk"], s["events"], s["exact"]) for s in pfs] == [
        (89, 9, 0, "1"), (149, 8, 1, "7/8"), (180, 7, 0, "7/8")]  # fmt: skip
    os = summary.endpoints["overall_survival"]
    assert [(s["day"], s["censored"]) for s in os["steps"]] == [(89, 1), (180, 8)]

    story = write_story(SEED)  # the seeded values reach the ledger unchanged
    for plan in story.subjects[:3]:
        blood = summary.endpoints["time_courses"][plan.subject_id]["car_t_kinetics"]
        planned = max(s.value for s in plan.kinetics if s.sample == "peripheral_blood")
        assert Decimal(blood["peripheral_blood/qpcr/total"]["cmax"]) == planned

    assert summary.verified and summary.verify["entries"] == summary.verify["latest_checkpoint"]
    export = json.loads((tmp_path / "export.json").read_text())
    assert len(export["entries"]) == summary.exported_entries == summary.verify["entries"]
    assert export["endpoints"]["subjects_infused"] == 9

    text = printed.getvalue()
    assert "verify: OK" in text and "8/9 (0.889)" in text and "S-010" in text


async def test_demo_refuses_a_system_where_its_users_exist(stack: Stack, tmp_path: Path) -> None:
    await stack.create_user("lin.wei", "an existing passphrase", "investigator")
    with pytest.raises(DemoError, match=r"lin\.wei exists already"):
        await run_demo(options(stack, tmp_path / "export.json"), Console(file=io.StringIO()))
