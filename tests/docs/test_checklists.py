"""The checklists of docs/architecture.md, each step held by a test.

A step that has no other test has its test here: forget the step, and one of these fails
naming what is missing. The page itself is checked too: every step names its guard, and
every guard and path it names exists.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from services.projections.__main__ import known_contracts
from services.projections.stores import COMMAND_SERVICES
from shared.contract_docs.discovery import channels
from shared.kernel.permissions import TABLES
from shared.kernel.provenance import Role
from shared.kernel.settings import DEFAULT_PORTS
from tests.deploy.files import applications

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def guides() -> str:
    """The hand-written docs (the generated documents are JSON and YAML)."""
    return "\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))


def section(text: str, heading: str) -> str:
    """The lines under ``heading`` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    start = lines.index(heading) + 1
    end = next(
        (i for i in range(start, len(lines)) if re.match(rf"#{{1,{level}}} ", lines[i])),
        len(lines),
    )
    return "\n".join(lines[start:end])


def letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


# --- adding an event type ---------------------------------------------------------------


def test_the_ledger_accepts_every_event_type_the_topics_carry() -> None:
    carried = {event.event_type: event for channel in channels() for event in channel.events}
    assert known_contracts() == carried


def test_every_published_event_type_is_described_in_the_guides() -> None:
    text = guides()
    carried = {event.event_type for channel in channels() for event in channel.events}
    undescribed = sorted(t for t in carried if f"`{t}`" not in text)
    assert not undescribed, f"describe them in docs/integrating.md: {undescribed}"


# --- adding a role ----------------------------------------------------------------------


def test_every_role_may_run_some_command() -> None:
    # Commands every role may run (sign, log out) are granted to ``list(Role)``: a new
    # member gets them by itself, so they do not show that its step was taken.
    own = [rule.roles for rows in TABLES.values() for rule in rows.rules
           if rule.roles != frozenset(Role)]  # fmt: skip
    granted = {role for roles in own for role in roles}
    idle = sorted(role.value for role in Role if role not in granted)
    assert not idle, (
        f"roles that shared/kernel/permissions.py grants no command of their own: {idle}"
    )


def test_every_role_has_its_place_in_each_order_of_precedence() -> None:
    unplaced = {name: sorted(r.value for r in Role if r not in rows.precedence)
                for name, rows in TABLES.items()}  # fmt: skip
    assert not any(unplaced.values()), f"place them in shared/kernel/permissions.py: {unplaced}"


def test_the_security_guide_has_a_column_per_role() -> None:
    guide = (ROOT / "docs" / "security.md").read_text()
    header = next(line for line in guide.splitlines() if line.startswith("| service | command |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")][2:]
    assert [letters(c) for c in columns] == [letters(role.value) for role in Role]


# --- adding a service -------------------------------------------------------------------


def test_every_service_but_the_projections_publishes_a_topic() -> None:
    assert {channel.service for channel in channels()} == applications() - {"projections"}


def test_every_service_has_its_default_port() -> None:
    assert set(DEFAULT_PORTS) == applications()
    assert len(set(DEFAULT_PORTS.values())) == len(DEFAULT_PORTS), "one port each"


# Programs the stack runs that are not packages of services/ (the ledger's witness is
# litewitness, see docs/operations.md).
OUTSIDE_PROGRAMS = frozenset({"witness"})


def test_compose_up_prints_every_service_address() -> None:
    script = (ROOT / "deploy" / "compose.sh").read_text()
    listed = re.search(r"^SERVICES=\(([^)]*)\)", script, re.MULTILINE)
    assert listed, "deploy/compose.sh: SERVICES=(name:port ...) not found"
    pairs = dict(entry.split(":") for entry in listed.group(1).split())
    ours = {name: port for name, port in pairs.items() if name not in OUTSIDE_PROGRAMS}
    assert ours == {name: str(port) for name, port in DEFAULT_PORTS.items()}


def test_the_local_infrastructure_makes_a_database_per_service() -> None:
    script = (ROOT / "deploy" / "local" / "infra.sh").read_text()
    listed = re.search(r"^DATABASES=\$\{TL_DATABASES:-([^}]*)\}", script, re.MULTILINE)
    assert listed, "deploy/local/infra.sh: DATABASES=${TL_DATABASES:-...} not found"
    assert set(listed.group(1).split()) == applications()


def test_every_service_has_its_tests() -> None:
    untested = sorted(
        name for name in applications() if not list((ROOT / "tests" / name).glob("test_*.py"))
    )
    assert not untested, f"no tests/<name>/test_*.py for {untested}"


def test_the_test_stacks_start_every_service() -> None:
    stack = importlib.import_module("tests.e2e.stack")
    fuzz = importlib.import_module("tests.fuzz.test_openapi")
    faults = importlib.import_module("tests.faults.conftest")
    assert set(stack.SERVICES) == applications()
    assert set(fuzz.SERVICES) == applications()
    assert set(faults.COMMAND_SERVICES) == set(COMMAND_SERVICES)


def test_the_readme_lists_every_service() -> None:
    table = section((ROOT / "README.md").read_text(), "## What runs today")
    rows = re.findall(r"^\| ([a-z_]+) \|", table, re.MULTILINE)
    assert sorted(rows) == sorted(["service", *applications()])  # the header, then each


def test_the_architecture_page_draws_every_service_and_topic() -> None:
    diagram = re.search(r"```mermaid\n(.*?)```", ARCHITECTURE.read_text(), re.DOTALL)
    assert diagram, "docs/architecture.md has no mermaid diagram"
    drawn = diagram.group(1)
    missing = [f"services/{name}" for name in sorted(applications())]
    missing += [channel.topic for channel in channels()]
    assert [name for name in missing if name not in drawn] == []


# --- the page itself --------------------------------------------------------------------

GUARD = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")


def test_every_checklist_step_names_the_test_that_guards_it() -> None:
    checklists = section(ARCHITECTURE.read_text(), "## Checklists")
    steps = re.split(r"\n(?=\d+\. )", checklists)
    numbered = [step for step in steps if re.match(r"\d+\. ", step)]
    assert len(numbered) >= 4 * 4
    unguarded = [step.splitlines()[0] for step in numbered if not GUARD.search(step)]
    assert not unguarded, unguarded


def test_every_guard_the_architecture_page_names_exists() -> None:
    missing = []
    for path, name in GUARD.findall(ARCHITECTURE.read_text()):
        source = ROOT / path
        found = source.is_file() and re.search(rf"def {name}\(", source.read_text())
        if not found:
            missing.append(f"{path}::{name}")
    assert not missing, missing


def test_every_path_the_architecture_page_names_exists() -> None:
    named = re.findall(
        r"`((?:services|shared|deploy|tests|tools|docs)/[^`\s]*|Makefile|Dockerfile)`",
        ARCHITECTURE.read_text(),
    )
    concrete = {path.partition("::")[0] for path in named if "<" not in path and "..." not in path}
    missing = sorted(path for path in concrete if not (ROOT / path).exists())
    assert not missing, missing


def test_the_readme_and_the_guides_link_the_architecture_page() -> None:
    for doc in ("README.md", "docs/operations.md", "docs/auditing.md", "docs/integrating.md"):
        assert "docs/architecture.md" in (ROOT / doc).read_text(), doc
