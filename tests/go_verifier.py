"""The Go verifier of exports (``tools/verify``), built from the repository with the
machine's Go toolchain (modules from the Go module proxy, pinned by ``go.sum``), and run
as an auditor would run it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support import finished

SOURCE = Path(__file__).resolve().parent.parent / "tools" / "verify"


def build(into: Path) -> Path:
    """``go build`` the verifier into ``into``; Go is on every machine of this project, so
    its absence is a failure, not a skip."""
    go = shutil.which("go")
    assert go is not None, "the Go toolchain is needed to build tools/verify"
    binary = into / "verify"
    finished([go, "build", "-o", str(binary), "."], timeout=600, cwd=SOURCE)
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
    done = finished([str(binary), *options, str(export)], timeout=120, exits=(0, 1))
    return Verdict(done.returncode, done.stdout)
