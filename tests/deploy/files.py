"""The deployment files under test, read the way docker compose reads them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
CLUSTER_FILE = DEPLOY / "compose.cluster.yml"  # an overlay: three Kafka nodes
ENV_EXAMPLE = DEPLOY / ".env.example"

INFRASTRUCTURE = frozenset({"kafka", "postgres"})
JOBS = frozenset({"databases", "topics", "keys"})
TOOLS = frozenset({"audit"})  # profile `tools`: run on demand, never by `up`
WITNESS = frozenset({"witness"})  # the ledger's outside witness: an image of its own

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+])[^}]*)?\}")


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())  # resolves anchors and `<<` merges
    assert isinstance(document, dict)
    return document


def applications() -> set[str]:
    """Every service package of the repository (``services/<name>/``)."""
    return {path.parent.name for path in (ROOT / "services").glob("*/__init__.py")}


def runnable_applications() -> set[str]:
    """The services that can run today (``services/<name>/__main__.py``)."""
    return {path.parent.name for path in (ROOT / "services").glob("*/__main__.py")}


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    assert isinstance(raw, dict), "environment is written as a mapping"
    return {str(key): str(value) for key, value in raw.items()}


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each short-syntax volume."""
    result = []
    for entry in service.get("volumes", []):
        source, target, *options = str(entry).split(":")
        result.append((source, target, "ro" in options))
    return result


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def run(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Run one of the repository's scripts or tools, capturing its text output."""
    return subprocess.run(  # noqa: S603 (our own scripts and pinned tools, no shell)
        args, capture_output=True, text=True, check=False, **options
    )
