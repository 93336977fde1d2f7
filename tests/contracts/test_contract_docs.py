"""The checked-in contracts under docs/ are exactly what the code generates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.contract_docs import REGENERATE, differences, documents, on_disk, write
from shared.contract_docs.discovery import app_factories, channels, contract_modules, defined_events
from shared.contract_docs.openapi import Unused, wired_app
from shared.kernel.settings import ServiceSettings
from shared.web.observability import instrument

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return documents(ROOT)


def test_checked_in_documents_are_what_the_code_generates(generated: dict[str, str]) -> None:
    drift = differences(generated, on_disk(ROOT))
    assert not drift, "\n".join([*drift, f"regenerate them: {REGENERATE}"])


def test_drift_names_each_missing_different_and_extra_file() -> None:
    generated = {"docs/a.json": "{}\n", "docs/b.json": "{}\n", "docs/c.json": "{}\n"}
    checked_in = {"docs/a.json": "{}\n", "docs/b.json": "[]\n", "docs/old.json": "{}\n"}
    assert differences(generated, checked_in) == [
        "docs/b.json: differs from what the code generates",
        "docs/c.json: missing (the code defines it)",
        "docs/old.json: extra (the code no longer defines it)",
    ]


def test_every_document_ends_with_one_newline(generated: dict[str, str]) -> None:
    assert all(text.endswith("\n") and not text.endswith("\n\n") for text in generated.values())


@pytest.mark.part11("11.10(k)")
def test_write_adds_missing_rewrites_changed_and_removes_stale_files(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert write(tmp_path)  # everything was missing
    (tmp_path / "docs/openapi/enrollment.json").write_text("{}\n")
    (tmp_path / "docs/schemas/enrollment/Gone.v1.json").write_text("{}\n")
    assert write(tmp_path) == [
        "docs/openapi/enrollment.json: differs from what the code generates",
        "docs/schemas/enrollment/Gone.v1.json: extra (the code no longer defines it)",
    ]
    assert not (tmp_path / "docs/schemas/enrollment/Gone.v1.json").exists()
    assert write(tmp_path) == []


def check(root: Path) -> subprocess.CompletedProcess[str]:
    """``python -m shared.contract_docs --check`` under another hash seed: the output must not
    depend on set or dict iteration order."""
    command = [sys.executable, "-m", "shared.contract_docs", "--check", "--root", str(root)]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_check_command_fails_naming_the_file_and_how_to_regenerate(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    write(tmp_path)
    clean = check(tmp_path)
    assert clean.returncode == 0, clean.stderr
    (tmp_path / "docs/asyncapi.yaml").unlink()
    stale = check(tmp_path)
    assert stale.returncode == 1
    assert "docs/asyncapi.yaml: missing" in stale.stderr
    assert "make contracts" in stale.stderr


def test_every_service_with_an_api_has_its_openapi_document(generated: dict[str, str]) -> None:
    services = {path.parent.name for path in ROOT.glob("services/*/api.py")}
    documented = {Path(p).stem for p in generated if p.startswith("docs/openapi/")}
    assert documented == services


def test_channel_addresses_are_the_topics_the_services_publish_to() -> None:
    for channel in channels():
        prefix = f"TL_{channel.service.upper()}"
        env = {f"{prefix}_DATABASE_URL": "postgresql://u:p@db/x", "TL_KAFKA_BOOTSTRAP": "k:9092"}
        assert channel.topic == ServiceSettings.from_env(channel.service, env).topic


def test_every_event_a_contract_module_defines_is_on_some_topic() -> None:
    defined = {e for module in contract_modules().values() for e in defined_events(module)}
    carried = {e for channel in channels() for e in channel.events}
    unregistered = sorted(e.event_type for e in defined - carried)
    assert not unregistered, f"defined but in no *_CONTRACTS registry: {unregistered}"


def test_a_dependency_used_while_building_an_app_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match=r"create_app used application\.record_denial"):
        Unused("application").record_denial()


def served_app(service: str) -> Any:
    """The app as ``shared.web.runner.serve`` serves it: ``create_app``'s, instrumented."""
    prefix = f"TL_{service.upper()}"
    env = {f"{prefix}_DATABASE_URL": "postgresql://u:p@db/x", "TL_KAFKA_BOOTSTRAP": "k:9092"}
    app = wired_app(app_factories()[service])
    instrument(app, ServiceSettings.from_env(service, env))
    return app


@pytest.mark.parametrize("service", sorted(app_factories()))
async def test_the_served_openapi_document_is_the_published_one(service: str) -> None:
    transport = httpx.ASGITransport(app=served_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://served") as client:
        served = (await client.get("/openapi.json")).json()
    published = json.loads((ROOT / f"docs/openapi/{service}.json").read_text())
    assert {"/health", "/ready", "/metrics"} <= set(served["paths"])
    assert served == published
