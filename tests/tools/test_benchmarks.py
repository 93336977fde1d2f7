"""Every benchmark runs to its report, at a tiny size, as `make bench` runs it.

A benchmark is run on demand only, so a change elsewhere could break one and nobody would
see it until the next measurement: bench.revocation did, when a locked account began to
answer a login as any wrong password does. This runs each of them (nothing is timed:
only that it finishes and reports against its baseline), and the registry below must name every
benchmark of bench/ and of the Makefile's BENCHES."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]
ROOT = Path(__file__).resolve().parents[2]
# each benchmark's smallest run that still measures every row it reports
TINY: dict[str, list[str]] = {
    "ingest": ["--events", "300"],
    "rebuild": ["--entries", "300"],
    "verify": ["--entries", "3000"],
    "endpoints": ["--entries", "300"],
    "commands": ["--clients", "2", "--commands", "20"],
    "signing": ["--rounds", "2"],
    "e2e": ["--clients", "2", "--commands", "10"],
    "revocation": ["--rounds", "8"],
    "studies": ["--studies", "1,2", "--sites", "1", "--commands", "4"],
}


def test_the_registry_names_every_benchmark() -> None:
    runnable = {p.stem for p in (ROOT / "bench").glob("*.py") if "__main__" in p.read_text()}
    listed = re.search(r"^BENCHES = (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert listed is not None
    assert set(TINY) == runnable == set(listed.group(1).split())


@pytest.mark.parametrize("name", list(TINY))
def test_a_benchmark_runs_to_its_report(name: str) -> None:
    run = subprocess.run(  # noqa: S603 (this interpreter, a module of bench/)
        [sys.executable, "-m", f"bench.{name}", *TINY[name]],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"bench.{name}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "base" in run.stdout, run.stdout  # its baseline row, or ratios to one ("x base")
