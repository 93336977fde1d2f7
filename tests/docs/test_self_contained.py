"""No file of the repository refers to anything outside it.

The design notes, the style notes and the clinical reference the project was started
from live beside the repository, not in it: a clone (CI's included) has none of them. A
file that cites one sends its reader nowhere; cite the docs under ``docs/`` or the public
source itself (NCI CTCAE v5.0, Lee et al. 2019 for ASTCT, RFC 6962, ClinicalTrials.gov
NCT05030779 ...) instead.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Spelled in pieces, so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            re.escape("../" + "shared"),  # the read-only folder beside the repository
            r"\b(?:DESIGN|STYLE|REFERENCE)" + re.escape(".md"),
            re.escape("shared/" + "protocol"),
            re.escape("NCT05030779" + ".txt"),
            re.escape("/" + "work/"),  # a path of the machine the repository was made on
        ]
    )
)


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 (git from PATH, as every developer runs it)
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return [name for name in listing.stdout.decode().split("\0") if name]


def outside_references(root: Path, names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue  # binary, or deleted in the working tree
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_tracked_file_refers_to_files_outside_the_repository() -> None:
    names = tracked_files()
    assert "README.md" in names  # the listing is the repository's, not an empty one
    offending = outside_references(ROOT, names)
    assert not offending, "cite docs/ or the public source instead:\n" + "\n".join(offending)


def test_the_check_sees_each_kind_of_outside_reference(tmp_path: Path) -> None:
    lines = [
        "see ../" + "shared/" + "protocol/x",
        "(" + "DESIGN" + ".md, Events)",
        "STYLE" + ".md says",
        "REFERENCE" + ".md's table",
        "/" + "work/shared/y",
        "docs/architecture.md and RFC 6962 are fine",
    ]
    (tmp_path / "f.txt").write_text("\n".join(lines) + "\n")
    found = outside_references(tmp_path, ["f.txt"])
    assert [entry.split(":")[1] for entry in found] == ["1", "2", "3", "4", "5"]
