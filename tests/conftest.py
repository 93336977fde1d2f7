"""Fixtures for the real Kafka broker and PostgreSQL started by ``deploy/local``.

`make test` starts them and exports their settings (``TL_*``). Without them the
integration tests fail loudly, naming what is missing; they never skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.kernel.settings import ServiceSettings, SettingsError
from tests.e2e.stack import Stack, running_stack
from tests.support import isolated


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


@pytest.fixture
def service() -> str:
    """The service whose settings ``settings`` isolates (a test folder's conftest, or a
    module, names its own)."""
    return "enrollment"


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
