"""The test suite's own rules (issue #14): tests mirror the service folders, and every
test that reaches the real broker or database is marked ``integration``."""

from __future__ import annotations

import ast
import os
import socket
from pathlib import Path

import pytest

from tests.conftest import INFRA_FIXTURES, InfraNotAllowed, pytest_collection_modifyitems

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


def test_a_test_using_the_infrastructure_is_marked_integration(
    request: pytest.FixtureRequest,
) -> None:
    reaching = [
        item
        for item in request.session.items
        if INFRA_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    assert all(item.get_closest_marker("integration") for item in reaching)


class Collected:
    """What the collection hook sees of a test: the fixtures it uses, and its markers."""

    def __init__(self, *fixturenames: str, marked: str | None = None) -> None:
        self.fixturenames = ["request", *fixturenames]
        self.markers: list[str] = [] if marked is None else [marked]

    def get_closest_marker(self, name: str) -> str | None:
        return name if name in self.markers else None

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.append(marker.name)


@pytest.mark.parametrize("fixture", sorted(INFRA_FIXTURES))
def test_the_collection_marks_what_uses_an_infrastructure_fixture(fixture: str) -> None:
    reaching, pure = Collected("tmp_path", fixture), Collected("tmp_path", "monkeypatch")
    pytest_collection_modifyitems([reaching, pure])  # type: ignore[list-item]
    assert (reaching.markers, pure.markers) == (["integration"], [])


def test_the_collection_marks_a_test_whose_application_is_on_postgres() -> None:
    on_postgres = Collected("client", marked="on_postgres")
    pytest_collection_modifyitems([on_postgres])  # type: ignore[list-item]
    assert on_postgres.markers == ["on_postgres", "integration"]


def test_a_test_not_marked_integration_cannot_reach_the_broker_or_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setitem(os.environ, "TL_PG_PORT", str(port))
        with socket.socket() as client, pytest.raises(InfraNotAllowed, match="integration"):
            client.connect(("127.0.0.1", port))
        monkeypatch.setitem(os.environ, "TL_PG_PORT", "1")
        monkeypatch.setitem(os.environ, "TL_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
        monkeypatch.delitem(os.environ, "TL_KAFKA_PORT", raising=False)
        with socket.socket() as client, pytest.raises(InfraNotAllowed):
            client.connect_ex(("127.0.0.1", port))
        monkeypatch.delitem(os.environ, "TL_KAFKA_BOOTSTRAP")
        with socket.socket() as client:
            client.connect(("127.0.0.1", port))  # any other port: allowed


@pytest.mark.integration
def test_an_integration_test_reaches_them(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setitem(os.environ, "TL_PG_PORT", str(port))
        with socket.socket() as client:
            client.connect(("127.0.0.1", port))
