"""Fixtures for the real Kafka broker and PostgreSQL started by ``deploy/local``, and the
rule that keeps the ``integration`` marker true.

`make test` starts them and exports their settings (``TL_*``). Without them the
integration tests fail loudly, naming what is missing; they never skip.

Which tests are integration tests, reliably:

- **Marked by the fixtures they use.** ``pytest_collection_modifyitems`` below marks
  ``integration`` every test that uses (directly or through other fixtures) one of
  ``INFRA_FIXTURES``: every fixture of this suite that reaches the broker or the
  database starts from one of them; and every test marked ``on_postgres`` (its
  ``application`` on PostgreSQL). Tests that reach them without a fixture (reading
  ``TL_*`` themselves, or running ``deploy/local`` scripts) carry ``pytestmark``.
- **Refused at run time when unmarked.** A test not marked ``integration`` that opens a
  connection to the broker's or the database's port fails at once
  (``_infra_only_for_integration_tests``), whatever way it found the address: a
  forgotten marker cannot hide behind a running stack.
- **Proved by** tests/docs/test_test_suite.py, and by running ``pytest -m "not
  integration"`` with no ``TL_*`` set and no infrastructure: it passes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.adverse_events.application import AdverseEventsApplication
from services.assessments.application import AssessmentsApplication
from services.enrollment.application import EnrollmentApplication
from services.infusion.application import InfusionApplication
from shared.kernel.settings import ServiceSettings, SettingsError
from tests import part11
from tests.e2e.stack import Stack, running_stack
from tests.support import MEMORY, SIGNER, asgi_client, isolated, on_postgres

# Every fixture reaching the real broker or PostgreSQL depends on one of these.
INFRA_FIXTURES = frozenset({"enrollment_settings_env", "faulty", "fuzzed"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "on_postgres: `application` keeps its events in the real PostgreSQL"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INFRA_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker(
            "on_postgres"
        ):
            item.add_marker(pytest.mark.integration)


def pytest_itemcollected(item: pytest.Item) -> None:
    """A ``part11`` marker must name rows of the matrix (a typo would prove nothing)."""
    for marker in item.iter_markers("part11"):
        unknown = [row for row in marker.args if row not in part11.BY_ID]
        if unknown or not marker.args:
            raise pytest.UsageError(
                f"{item.nodeid}: part11 marker names no row of tests/part11.py: {unknown}"
            )


def infra_ports() -> set[int]:
    """The ports of the broker and the database this run was given (``TL_*``)."""
    names = ("TL_PG_PORT", "TL_KAFKA_PORT", "TL_KAFKA_CONTROLLER_PORT")
    ports = {int(os.environ[name]) for name in names if os.environ.get(name, "").isdigit()}
    bootstrap = os.environ.get("TL_KAFKA_BOOTSTRAP", "")
    ports |= {int(port) for port in (a.rpartition(":")[2] for a in bootstrap.split(","))
              if port.isdigit()}  # fmt: skip
    return ports


class InfraNotAllowed(AssertionError):
    """A test not marked ``integration`` tried to reach the broker or the database."""


@pytest.fixture(autouse=True)
def _infra_only_for_integration_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("integration"):
        return
    original = socket.socket.connect, socket.socket.connect_ex

    def guarded(which: int) -> Any:
        def connect(sock: socket.socket, address: Any) -> Any:
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and isinstance(address, tuple)
                and address[1] in infra_ports()
            ):
                raise InfraNotAllowed(
                    f"{request.node.nodeid} reaches {address[0]}:{address[1]} (the real broker "
                    "or database) but is not marked integration"
                )
            return original[which](sock, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guarded(0))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(1))


@pytest.fixture
def enrollment_settings_env() -> dict[str, str]:
    """The environment of a real stack, or a loud failure."""
    try:
        ServiceSettings.from_env("enrollment")
    except SettingsError as error:
        pytest.fail(
            f"{error}: the integration tests need the real Kafka and PostgreSQL; "
            "run them with `make test`, which starts deploy/local and exports their settings",
            pytrace=False,
        )
    return dict(os.environ)


SERVICES = {p.parent.name for p in Path(__file__).parents[1].glob("services/*/__init__.py")}
APPLICATIONS: dict[str, Any] = {
    "enrollment": EnrollmentApplication,
    "infusion": InfusionApplication,
    "adverse_events": AdverseEventsApplication,
    "assessments": AssessmentsApplication,
}


@pytest.fixture
def service(request: pytest.FixtureRequest) -> str:
    """The service of the test's folder (``tests/<service>/``); enrollment elsewhere."""
    folder = request.path.parent.name
    return folder if folder in SERVICES else "enrollment"


@pytest.fixture
def application(request: pytest.FixtureRequest, service: str) -> Iterator[Any]:
    """The service's application, signing with ``SIGNER``: in memory, or on the real
    PostgreSQL in ``settings``' schema for a test marked ``on_postgres``."""
    factory = APPLICATIONS[service]
    if request.node.get_closest_marker("on_postgres"):
        with on_postgres(factory, request.getfixturevalue("settings"), signer=SIGNER) as app:
            yield app
    else:
        yield factory(signer=SIGNER, env=MEMORY)


@pytest.fixture
async def client(api: Any, service: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the folder's ``api`` fixture (its service's app), served in process."""
    async with asgi_client(api, service) as client:
        yield client


@pytest.fixture
async def settings(
    service: str, enrollment_settings_env: dict[str, str]
) -> AsyncIterator[ServiceSettings]:
    """The service's settings isolated for one test: a fresh schema and a fresh topic."""
    async with isolated(service, enrollment_settings_env) as isolated_settings:
        yield isolated_settings


@pytest.fixture
async def stack(enrollment_settings_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Stack]:
    """The identity and enrollment services running as processes, with an administrator."""
    async with running_stack(enrollment_settings_env, tmp_path) as services:
        yield services
