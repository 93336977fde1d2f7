"""What the identity tests share: a controlled server clock, and the application in memory
(an administrator; an account locks after 3 failed attempts). ``test_concurrency`` keeps
its own ``application``, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.identity.application import IdentityApplication
from services.identity.domain import AccountPolicy
from shared.kernel.provenance import Actor, Attribution, Provenance, Role
from tests.support import MEMORY

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
