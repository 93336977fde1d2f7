from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.infusion.views import EnrollmentView
from shared.kernel.settings import ServiceSettings


@pytest.fixture
async def view(enrollment_settings_env: dict[str, str]) -> AsyncIterator[EnrollmentView]:
    schema = f"test_{uuid.uuid4().hex[:10]}"
    env = {**enrollment_settings_env, "TL_INFUSION_DATABASE_SCHEMA": schema}
    settings = ServiceSettings.from_env("infusion", env)
    owner = await asyncpg.connect(settings.database.dsn)
    await owner.execute(f'CREATE SCHEMA "{schema}"')
    local = EnrollmentView(settings.database)
    await local.open()
    try:
        yield local
    finally:
        await local.close()
        await owner.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await owner.close()
