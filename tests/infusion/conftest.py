"""Fixtures of the infusion tests: its HTTP app (``api``, with the enrollment view replaced
by fixed answers; tests/conftest.py serves it as ``client`` over ``application``), and the
real local enrollment view on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from services.infusion.api import create_app
from services.infusion.application import InfusionApplication
from services.infusion.domain import Enrollment
from services.infusion.publication import PUBLICATION
from services.infusion.views import EnrollmentView
from shared.web.service_app import Serving
from tests.support import NOW, VERIFIER, memory_outbox, opened, own_schema


class Enrollments:
    """The enrollment view's answers: S-001 enrolled at level 1, S-002 withdrawn."""

    async def enrollment(self, subject_id: str) -> Enrollment:
        known = {"S-001": Enrollment("enrolled", 1), "S-002": Enrollment("withdrawn", 1)}
        return known.get(subject_id, Enrollment("unknown", None))


@pytest.fixture
def api(application: InfusionApplication) -> FastAPI:
    view: Any = Enrollments()
    outbox = memory_outbox(application, PUBLICATION)
    return create_app(application, view, Serving(VERIFIER, outbox, lambda: NOW))


@pytest.fixture
async def view(enrollment_settings_env: dict[str, str]) -> AsyncIterator[EnrollmentView]:
    async with (
        own_schema("infusion", enrollment_settings_env) as settings,
        opened(EnrollmentView(settings.database)) as local,
    ):
        yield local
