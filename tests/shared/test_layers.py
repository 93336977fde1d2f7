"""Importing a rule loads no database, Kafka, HTTP or token library.

import-linter (``[tool.importlinter]`` in pyproject.toml, run by ``make test``) checks the
imports as written; this checks what Python really loads: each pure module is imported
alone in a fresh interpreter, and the libraries it brought in are read from sys.modules.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
# eventsourcing itself is allowed (aggregates and events); its PostgreSQL module is not.
LOADED_BY_IO = (
    "asyncpg",
    "psycopg",
    "psycopg_pool",
    "aiokafka",
    "kafka",
    "faststream",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
    "jwt",
    "eventsourcing.postgres",
    "shared.adapters",
    "shared.web",
)


def contract(contract_id: str) -> dict[str, list[str]]:
    return next(c for c in CONFIG["contracts"] if c["id"] == contract_id)


def modules_of(package: str) -> list[str]:
    base = ROOT / package.replace(".", "/")
    paths = [base.with_suffix(".py")] if base.with_suffix(".py").exists() else base.rglob("*.py")
    names = []
    for path in paths:
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def pure_modules() -> list[str]:
    """Every module the two purity contracts name (their wildcards expanded)."""
    every = modules_of("services") + modules_of("shared")
    names = contract("pure-rules")["source_modules"] + contract("pure-kernel")["source_modules"]
    found = {m for name in names for m in every if fnmatch.fnmatch(m, name) or m == name}
    found |= {m for name in names for m in every if m.startswith(f"{name}.")}
    return sorted(found)


PROBE = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    "print(json.dumps(sorted(sys.modules)))"
)


def loaded_by(module: str) -> list[str]:
    result = subprocess.run(  # noqa: S603 (our interpreter, our own module names)
        [sys.executable, "-c", PROBE, module],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout)
    return [m for m in loaded if any(m == io or m.startswith(f"{io}.") for io in LOADED_BY_IO)]


def test_every_service_domain_and_the_kernel_are_checked() -> None:
    checked = pure_modules()
    domains = [f"services.{p.parent.name}.domain" for p in (ROOT / "services").glob("*/domain.py")]
    assert set(domains) <= set(checked)
    assert {"shared.kernel.records", "shared.clinical", "shared.contracts.security"} <= set(checked)


def test_importing_a_rule_loads_no_database_kafka_or_http_library() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        leaks = dict(zip(pure_modules(), pool.map(loaded_by, pure_modules()), strict=True))
    assert not {module: libs for module, libs in leaks.items() if libs}


@pytest.mark.parametrize("leak", ["shared.adapters.cohort", "shared.web.auth"])
def test_the_probe_sees_a_leak(leak: str) -> None:
    assert loaded_by(leak), f"importing {leak} should load an I/O library"
