"""What the identity tests share: a controlled server clock, and the application in memory
(an administrator; an account locks after 3 failed attempts). ``test_concurrency`` keeps
its own ``application``, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.identity.api import PasswordChecks, create_app
from services.identity.application import IdentityApplication
from services.identity.domain import AccountPolicy
from services.identity.publication import PUBLICATION
from shared.kernel.provenance import Actor, Attribution, Provenance, Role
from shared.web.service_app import Serving
from tests.support import ISSUER, MEMORY, VERIFIER, asgi_client, memory_outbox

ADMIN_PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def application() -> IdentityApplication:
    policy = AccountPolicy(max_failed_attempts=3, signing_idle_timeout=timedelta(minutes=15))
    app = IdentityApplication(env=MEMORY, policy=policy)
    bootstrap = Attribution(
        Provenance(Actor("bootstrap", "bootstrap", "system", "ZJU"), "b"), datetime.now(UTC)
    )
    app.create_user(
        "admin", "Ada Admin", "ZJU", frozenset({Role.ADMINISTRATOR}), ADMIN_PASSWORD, bootstrap
    )
    return app


@pytest.fixture
async def client(
    application: IdentityApplication, clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(application, clock) as c:
        yield c


@asynccontextmanager
async def serving(
    application: IdentityApplication, clock: Clock, checks: PasswordChecks | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the identity API on ``application``, checking passwords with ``checks``
    (by default, with the default settings)."""
    outbox = memory_outbox(application, PUBLICATION)
    app = create_app(application, ISSUER, Serving(VERIFIER, outbox, clock), checks)
    async with asgi_client(app, "id") as c:
        yield c
