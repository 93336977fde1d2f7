"""The test suite's own rules (issue #14): tests mirror the service folders."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/__init__.py"))


def test_the_services_are_found() -> None:
    assert {"enrollment", "infusion", "adverse_events", "assessments", "identity",
            "projections"} <= set(SERVICES)  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("name", ["test_api.py", "test_publication.py"])
def test_every_service_has_api_and_publication_tests(service: str, name: str) -> None:
    path = ROOT / "tests" / service / name
    assert path.is_file(), f"services/{service}/ has no tests/{service}/{name}"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tests = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    ]
    assert tests, f"tests/{service}/{name} holds no test"
