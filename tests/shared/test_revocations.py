"""Withdrawn access (shared.adapters.revocations): which tokens an identity event refuses,
and the fail-closed gate, against the real PostgreSQL and Kafka of deploy/local (the
end-to-end tests with every service running are tests/e2e/test_revocation.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.adapters.revocations import RevocationFeed, RevocationView, withdrawal
from shared.adapters.subject_views import Subscriptions, kafka_broker, subscribe
from shared.kernel.envelope import CloudEvent
from shared.kernel.principals import Principal, RevocationsUnconfirmed, TokenRevoked
from shared.kernel.provenance import Role
from shared.kernel.settings import ServiceSettings
from tests.support import eventually, free_port, opened
from tests.support import identity_event as published

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)


def identity_event(event_type: str, at: datetime = T0, **data: Any) -> CloudEvent:
    return published(event_type, at, version=1, **data)


def token(
    user_id: str, *roles: Role, issued: datetime | None = T0 - SECOND, session: str = "s-1"
) -> Principal:
    return Principal(user_id, user_id.title(), "ZJU-1", frozenset(roles), session, issued)


def test_only_lockout_deactivation_password_change_role_revocation_and_logout_withdraw() -> None:
    assert withdrawal(identity_event("AccountLocked.v1", user_id="u", failed_attempts=5)) == (
        "account:u"
    )
    assert withdrawal(identity_event("UserDeactivated.v1", user_id="u")) == "account:u"
    assert withdrawal(identity_event("PasswordChanged.v1", user_id="u")) == "account:u"
    assert withdrawal(identity_event("RoleRevoked.v1", user_id="u", role="monitor")) == (
        "role:u:monitor"
    )
    assert withdrawal(identity_event("LoggedOut.v1", user_id="u", session_id="s")) == "session:s"
    for kept in ("UserCreated.v1", "RoleGranted.v1", "AccountUnlocked.v1", "LoginSucceeded.v1"):
        assert withdrawal(identity_event(kept, user_id="u", role="monitor", session_id="s")) is None


async def publish(settings: ServiceSettings, *events: CloudEvent | bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for event in events:
            value = event if isinstance(event, bytes) else event.to_kafka_value()
            await producer.send_and_wait(settings.topic, value, key=b"User-u")
    finally:
        await producer.stop()


@pytest.fixture
async def view(settings: ServiceSettings) -> AsyncIterator[RevocationView]:
    async with opened(RevocationView(settings.database)) as revocations:
        yield revocations


def feed_of(view: RevocationView, settings: ServiceSettings, **options: Any) -> RevocationFeed:
    group = f"test-revocations-{uuid.uuid4().hex[:8]}"
    options = {"max_lag": 1.0, "check_every": 0.1, "startup_wait": 0.0, **options}
    return RevocationFeed(view, settings.kafka_bootstrap, settings.topic, group, **options)


async def admitted(feed: RevocationFeed, principal: Principal) -> str:
    """``ok``, or the code of the refusal."""
    try:
        await feed.admit(principal)
    except (TokenRevoked, RevocationsUnconfirmed) as refusal:
        return refusal.code
    return "ok"


@pytest.mark.part11("11.300(c)")
async def test_each_withdrawal_refuses_the_tokens_it_names_from_then_on(
    settings: ServiceSettings, view: RevocationView
) -> None:
    await publish(
        settings,
        identity_event("AccountLocked.v1", user_id="locked", failed_attempts=5),
        identity_event("UserDeactivated.v1", user_id="gone", reason="left"),
        identity_event("RoleRevoked.v1", user_id="demoted", role="monitor", reason="rotated"),
        identity_event("LoggedOut.v1", user_id="out", session_id="s-out"),
        identity_event("PasswordChanged.v1", user_id="changed"),
        b"not a cloudevent",  # a dead letter: the feed goes on, and is still caught up
        identity_event("RoleRevoked.v1", user_id="demoted"),  # no role: a dead letter too
    )
    feed = feed_of(view, settings)
    broker = kafka_broker(settings.kafka_bootstrap)
    subscribe(broker, feed.topic, feed.group_id, view)
    stopping = asyncio.Event()
    running = [asyncio.create_task(Subscriptions(broker).run(stopping)),
               asyncio.create_task(feed.run(stopping))]  # fmt: skip
    try:
        # the request waits for the first confirmation, then is decided
        assert await admitted(feed, token("locked")) == "token_revoked"
        assert await feed.problems() == {"revocations": "ok"}
        assert await view.dead_letter_count() == 2
        cases = [  # (a list: a principal's equality leaves its issue time out)
            # lockout and deactivation: every token issued at or before the event
            (token("locked", issued=T0), "token_revoked"),
            (token("locked", issued=T0 + MICRO), "ok"),  # issued after an unlock
            (token("gone", Role.MONITOR), "token_revoked"),
            # role revocation: the tokens carrying the role, issued at or before
            (token("demoted", Role.AUDITOR, Role.MONITOR), "token_revoked"),
            (token("demoted", Role.AUDITOR), "ok"),
            (token("demoted", Role.AUDITOR, Role.MONITOR, issued=T0 + MICRO), "ok"),
            # logout: the session's tokens, whenever issued; not the account's others
            (token("out", session="s-out", issued=T0 + SECOND), "token_revoked"),
            (token("out", session="s-other"), "ok"),
            # password change: every token of the account issued at or before the change,
            # whatever its session or roles; a login with the new password is issued after
            (token("changed", Role.INVESTIGATOR, session="s-a"), "token_revoked"),
            (token("changed", session="s-b", issued=T0), "token_revoked"),
            (token("changed", Role.INVESTIGATOR, issued=T0 + MICRO), "ok"),
            (token("someone-else", Role.INVESTIGATOR), "ok"),
            (token("locked", issued=None), "token_revoked"),  # no iat: refused
        ]
        for principal, expected in cases:
            assert await admitted(feed, principal) == expected, principal
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*running), timeout=30)


@pytest.mark.part11("11.300(c)")
async def test_a_process_that_does_not_read_the_topic_learns_withdrawals_from_the_table(
    settings: ServiceSettings, view: RevocationView
) -> None:
    """Two processes of one service share one consumer group: a withdrawal one of them
    writes refuses the token in the other, which keeps its copy of the table from it."""
    feed = feed_of(view, settings)
    broker = kafka_broker(settings.kafka_bootstrap)
    subscribe(broker, feed.topic, feed.group_id, view)  # this process writes the table
    async with opened(RevocationView(settings.database)) as other_view:
        other = feed_of(other_view, settings)
        other.group_id = feed.group_id  # the same group: its offsets cover both processes
        stopping = asyncio.Event()
        running = [asyncio.create_task(Subscriptions(broker).run(stopping)),
                   asyncio.create_task(other.run(stopping))]  # fmt: skip
        try:
            assert await admitted(other, token("moved")) == "ok"
            await publish(settings, identity_event("UserDeactivated.v1", user_id="moved"))

            async def refused() -> bool:
                return await admitted(other, token("moved")) == "token_revoked"

            await eventually(refused, timeout=30, what="the other process refuses the token")
            assert await admitted(other, token("stayed")) == "ok"
        finally:
            stopping.set()
            await asyncio.wait_for(asyncio.gather(*running), timeout=30)


@pytest.mark.part11("11.10(d)")
async def test_a_feed_that_stops_reading_fails_closed_after_its_limit(
    settings: ServiceSettings, view: RevocationView
) -> None:
    feed = feed_of(view, settings)
    stopping = asyncio.Event()
    checking = asyncio.create_task(feed.run(stopping))  # no subscription reads the topic
    try:
        # an idle topic is caught up by its offsets: nothing has to arrive
        assert await admitted(feed, token("u")) == "ok"
        await publish(settings, identity_event("LoginSucceeded.v1", user_id="u", session_id="s"))

        async def refused() -> bool:
            return await admitted(feed, token("u")) == "revocations_unconfirmed"

        await eventually(refused, timeout=30, what="requests refused while the view is behind")
        problems = await feed.problems()
        assert problems["revocations"].startswith("revocations_unconfirmed"), problems
        assert "1 identity records not yet read" in problems["revocations"], problems
    finally:
        stopping.set()
        await asyncio.wait_for(checking, timeout=30)


@pytest.mark.part11("11.10(d)")
async def test_an_unreachable_broker_confirms_nothing(
    settings: ServiceSettings, view: RevocationView
) -> None:
    feed = feed_of(view, settings, max_lag=0.5)
    feed.bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    stopping = asyncio.Event()
    checking = asyncio.create_task(feed.run(stopping))
    try:
        with pytest.raises(RevocationsUnconfirmed) as refused:
            await feed.admit(token("u"))  # waits out the limit from start, then refuses
        assert refused.value.details["confirmed_seconds_ago"] is None
        assert "never since start" in (await feed.problems())["revocations"]
    finally:
        stopping.set()
        await asyncio.wait_for(checking, timeout=30)


async def test_a_view_whose_database_is_gone_refuses_with_503_not_500(
    settings: ServiceSettings, view: RevocationView
) -> None:
    feed = feed_of(view, settings)
    stopping = asyncio.Event()
    checking = asyncio.create_task(feed.run(stopping))
    try:
        assert await admitted(feed, token("u")) == "ok"
        await view.close()  # as a database that went away: the pool refuses

        async def refused() -> bool:  # from the next check on
            return await admitted(feed, token("u")) == "revocations_unconfirmed"

        await eventually(refused, timeout=10, what="requests refused once the view is unreadable")
        with pytest.raises(RevocationsUnconfirmed) as refusal:
            await feed.admit(token("u"))
        assert refusal.value.details["reason"].startswith("revocations view unreadable")
        assert "revocations view unreadable" in (await feed.problems())["revocations"]
    finally:
        stopping.set()
        await asyncio.wait_for(checking, timeout=30)
