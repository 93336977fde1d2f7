"""The Go verifier of exports (``tools/verify``), built from the repository with the
machine's Go toolchain (modules from the Go module proxy, pinned by ``go.sum``), and run
as an auditor would run it."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "tools" / "verify"


def build(into: Path) -> Path:
    """``go build`` the verifier into ``into``; Go is on every machine of this project, so
    its absence is a failure, not a skip."""
    go = shutil.which("go")
    assert go is not None, "the Go toolchain is needed to build tools/verify"
    binary = into / "verify"
    done = subprocess.run(  # noqa: S603 (the machine's go, our source)
        [go, "build", "-o", str(binary), "."],
        cwd=SOURCE,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return binary


@dataclass(frozen=True)
class Verdict:
    returncode: int
    stdout: str

    @property
    def failures(self) -> set[tuple[int | None, str]]:
        """(position, kind) of each ``FAILED`` line; None: the export as a whole."""
        found: set[tuple[int | None, str]] = set()
        for line in self.stdout.splitlines():
            if line.startswith("FAILED "):
                where, kind = line.removeprefix("FAILED ").split(": ")[:2]
                found.add((None if where == "export" else int(where.split()[1]), kind))
        return found


def run(binary: Path, export: Path, *options: str) -> Verdict:
    done = subprocess.run(  # noqa: S603 (the verifier just built)
        [str(binary), *options, str(export)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return Verdict(done.returncode, done.stdout)
