"""Fixtures for the real Kafka broker and PostgreSQL started by ``deploy/local``.

`make test` starts them and exports their settings (``TL_*``). Without them the
integration tests fail loudly, naming what is missing; they never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.settings import DatabaseSettings, ServiceSettings, SettingsError
from shared.topics import TopicSpec, ensure_topics


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
async def settings(enrollment_settings_env: dict[str, str]) -> AsyncIterator[ServiceSettings]:
    """Enrollment settings isolated for one test: a fresh schema and a fresh topic."""
    suffix = uuid.uuid4().hex[:10]
    schema, topic = f"test_{suffix}", f"test.enrollment.{suffix}"
    env = {
        **enrollment_settings_env,
        "TL_ENROLLMENT_DATABASE_SCHEMA": schema,
        "TL_ENROLLMENT_TOPIC": topic,
    }
    settings = ServiceSettings.from_env("enrollment", env)
    await _execute(settings.database, f'CREATE SCHEMA "{schema}"')
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(topic, partitions=3))
    yield settings
    await _execute(settings.database, f'DROP SCHEMA "{schema}" CASCADE')


async def _execute(database: DatabaseSettings, statement: str) -> None:
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
