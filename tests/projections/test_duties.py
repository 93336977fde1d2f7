"""The projections' ``/ready`` check that it judges accounts by identity's role pairs
(``services.projections.duties``; docs/security.md, "Separation of duties"), against the
identity API itself (in this process, on the in-memory store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.identity.application import IdentityApplication
from services.identity.domain import AccountPolicy
from services.projections.duties import CHECK, DutiesCheck
from shared.kernel.permissions import SeparationOfDuties
from tests.identity.conftest import Clock, serving
from tests.support import MEMORY, free_port

IDENTITY_SETTING = "administrator+clinical,administrator+auditor"


@pytest.fixture
async def identity() -> AsyncIterator[httpx.AsyncClient]:
    """The identity API, started with ``TL_INCOMPATIBLE_ROLES`` = ``IDENTITY_SETTING``."""
    policy = AccountPolicy(duties=SeparationOfDuties.parse(IDENTITY_SETTING))
    async with serving(IdentityApplication(env=MEMORY, policy=policy), Clock()) as client:
        yield client


async def test_identity_publishes_its_pairs_without_a_token(identity: httpx.AsyncClient) -> None:
    answer = await identity.get("/separation-of-duties")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "incompatible_roles": SeparationOfDuties.parse(IDENTITY_SETTING).pairs()
    }
    assert ["auditor", "administrator"] in answer.json()["incompatible_roles"]


async def test_the_same_pairs_are_ready(identity: httpx.AsyncClient) -> None:
    # written otherwise, the same pairs
    ours = SeparationOfDuties.parse(
        "administrator+auditor, clinical+administrator, investigator+administrator"
    )
    check = DutiesCheck(ours, "http://identity", http=identity)

    assert await check.problems() == {CHECK: "ok"}


async def test_other_pairs_are_not_ready_and_are_named(identity: httpx.AsyncClient) -> None:
    check = DutiesCheck(SeparationOfDuties.default(), "http://identity", http=identity)

    found = (await check.problems())[CHECK]

    assert found.startswith("mismatch: TL_INCOMPATIBLE_ROLES differs from identity's"), found
    assert "identity alone forbids auditor+administrator; this service alone nothing" in found

    none = DutiesCheck(SeparationOfDuties.parse("none"), "http://identity", http=identity)
    none.interval = 0
    assert "this service alone nothing" in (await none.problems())[CHECK]
    assert (
        "identity alone forbids auditor+administrator, cell_therapy_pharmacist+administrator"
        in (await none.problems())[CHECK]
    )


async def test_an_identity_that_never_answered_leaves_it_unconfirmed_then_the_last_answer_holds(
    identity: httpx.AsyncClient,
) -> None:
    away = f"http://127.0.0.1:{free_port()}"
    check = DutiesCheck(SeparationOfDuties.default(), away, timeout=0.5, interval=0)

    assert (await check.problems())[CHECK].startswith(f"ok, unconfirmed: identity at {away}")

    check.http = identity  # identity answers: a mismatch
    mismatch = (await check.problems())[CHECK]
    assert mismatch.startswith("mismatch")
    check.http = None  # then stops answering: the mismatch stands, not "ok"
    assert (await check.problems())[CHECK] == mismatch

    same = DutiesCheck(SeparationOfDuties.parse(IDENTITY_SETTING), away, http=identity, interval=0)
    assert await same.problems() == {CHECK: "ok"}
    same.http = None  # an identity outage does not make the projections unready
    assert await same.problems() == {CHECK: "ok"}


async def test_identity_is_asked_at_most_once_an_interval(identity: httpx.AsyncClient) -> None:
    """/ready is polled often (orchestrators, the console): between asks it does no I/O."""
    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        asked.append(request.url.path)

    identity.event_hooks["request"].append(count)
    check = DutiesCheck(SeparationOfDuties.parse(IDENTITY_SETTING), "http://identity",
                        http=identity, interval=3600)  # fmt: skip
    for _ in range(5):
        assert await check.problems() == {CHECK: "ok"}
    assert asked == ["/separation-of-duties"]
