"""Fixtures of the enrollment tests: its HTTP app (``api``; tests/conftest.py serves it as
``client`` over ``application``)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from shared.web.service_app import Serving
from tests.support import NOW, VERIFIER, memory_outbox


@pytest.fixture
def api(application: EnrollmentApplication) -> FastAPI:
    outbox = memory_outbox(application, PUBLICATION)
    return create_app(application, Serving(VERIFIER, outbox, lambda: NOW))
