"""Withdrawn access, learnt from the identity authority's topic (21 CFR 11.10(d), 11.300).

An access token is checked with the authority's public key alone, so a service would
accept it until it expires. Each service (the authority and the projections service too)
therefore keeps a local view of the identity topic, ``revocations`` in its own database,
fed through the same subscription plumbing as every local view
(``shared.adapters.subject_views.subscribe``), and refuses a token the view withdraws:

- ``AccountLocked``, ``UserDeactivated`` and ``PasswordChanged``: every token of the account
  issued at or before the event (a password changed because it leaked ends every session
  opened with it; a login with the new password is issued after the change, and stands);
- ``RoleRevoked``: every token of the account that carries the role, issued at or before, in
  the study the role was revoked in (``RoleRevoked.v1``: the first study; ``.v2`` names it:
  a role is granted per study, and revoking it in one study leaves the others' tokens);
- ``LoggedOut``: every token of the session, whenever issued.

Both times come from the identity authority's own clock (the token's ``iat`` and the event's
``recordedtime``), so no clock of this service takes part and skew between hosts does not
matter. ``iat`` is written to the microsecond, as the event's time is, so the order of a
token's issue and a withdrawal is exact: a token issued after an unlock (or a role granted
again) is accepted, even within the second of the lockout; a deactivated account cannot log
in again. A token without a fractional ``iat`` (issued before this change) is compared by
its whole second, which refuses it too.

Fail closed: ``RevocationFeed`` asks the broker every ``check_every`` seconds for the
topic's end offsets and the view's committed offsets. The view is *confirmed* as of the
moment it had consumed every record that the topic held at a check; while the last
confirmation is older than ``max_lag`` (``TL_REVOCATION_MAX_LAG_SECONDS``), or there was
none yet, every request with an access token is answered 503 ``revocations_unconfirmed``
and ``/ready`` names the reason. An idle topic is confirmed by its offsets, not by a
message arriving.

A request does not read the table: each process keeps a copy in memory, refreshed at every
check (after the committed offsets are read, so a confirmed view's copy holds every
withdrawal they cover) and by its own subscription as it writes. A process serving
requests while another writes the table thus learns of a withdrawal within ``check_every``
of its commit. A check that cannot read the table refuses every request with a token
(503) until one can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
from aiokafka import TopicPartition

from shared.adapters.readings import KafkaOffsets
from shared.adapters.subject_views import _LocalView
from shared.contracts.identity import (
    AccountLockedV1,
    LoggedOutV1,
    PasswordChangedV1,
    RoleRevokedV1,
    RoleRevokedV2,
    UserDeactivatedV1,
)
from shared.kernel.envelope import CloudEvent
from shared.kernel.principals import Principal, RevocationsUnconfirmed, TokenRevoked
from shared.kernel.settings import DatabaseSettings
from shared.study import DEFAULT_STUDY_ID, record_key

log = logging.getLogger(__name__)

TABLE = "revocations"
CHECK = "revocations"  # its name in /ready
# The events that withdraw access, and what each one names.
ACCOUNT = (AccountLockedV1.event_type, UserDeactivatedV1.event_type, PasswordChangedV1.event_type)
ROLE, SESSION = RoleRevokedV1.event_type, LoggedOutV1.event_type
STUDY_ROLE = RoleRevokedV2.event_type


def group_id(service: str) -> str:
    """The consumer group of ``service``'s revocation view."""
    return f"trialledger-{service}-revocations"


def account_key(user_id: str) -> str:
    return f"account:{user_id}"


def role_key(user_id: str, role: str, study_id: str = DEFAULT_STUDY_ID) -> str:
    """The key of ``role`` in ``study_id``: the first study's as before studies were named,
    another's with the study (``record_key``)."""
    return f"role:{record_key(study_id, user_id)}:{role}"


def session_key(session_id: str) -> str:
    return f"session:{session_id}"


def withdrawal(event: CloudEvent) -> str | None:
    """The key of the access ``event`` withdraws, or None (not a withdrawal)."""
    data = event.data
    if event.type in ACCOUNT:
        return account_key(str(data["user_id"]))
    if event.type == ROLE:
        return role_key(str(data["user_id"]), str(data["role"]))
    if event.type == STUDY_ROLE:
        return role_key(str(data["user_id"]), str(data["role"]), str(data["study_id"]))
    if event.type == SESSION:
        return session_key(str(data["session_id"]))
    return None


def keys_of(principal: Principal) -> list[str]:
    """The keys whose withdrawal at or after the token's issue refuses it: the account's,
    and each of its roles in the token's study."""
    study_id = principal.study_id or DEFAULT_STUDY_ID
    return [account_key(principal.user_id)] + [
        role_key(principal.user_id, role.value, study_id) for role in sorted(principal.roles)
    ]


class RevocationView(_LocalView):
    """Withdrawals of access by key, the latest time of each, in this service's database."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS {table} (key text PRIMARY KEY, "
        "revoked_at timestamptz NOT NULL, event_type text NOT NULL, event_id uuid NOT NULL, "
        "updated_at timestamptz NOT NULL DEFAULT now())"
    )

    # read by every request with a token, written seldom: connections are opened while
    # requests come and closed after a quiet half minute, so an idle service holds none
    POOL: ClassVar[dict[str, Any]] = {
        "min_size": 0,
        "max_size": 4,
        "max_inactive_connection_lifetime": 30.0,
    }

    def __init__(self, database: DatabaseSettings) -> None:
        super().__init__(database, TABLE, lambda event: None)
        # the table as this process last read it: key -> (latest withdrawal, event type)
        self._withdrawn: dict[str, tuple[datetime, str]] = {}
        self._read_up_to: datetime | None = None  # the newest ``updated_at`` read

    def describe(self) -> str:
        return "the revocations view"

    async def apply(self, value: bytes | None, topic: str, partition: int, offset: int) -> bool:
        """Apply one record; False if it went to the dead letters. A redelivery changes
        nothing: a key keeps its latest withdrawal."""
        event = await self._read(value, topic, partition, offset)
        if event is None:
            return False
        try:
            key = withdrawal(event)
        except KeyError as missing:
            await self._dead_letter(
                value, topic, partition, offset, f"no {missing} in {event.type}"
            )
            return False
        if key is None:
            return True
        await self.pool.execute(
            f"INSERT INTO {self.table} (key, revoked_at, event_type, event_id, updated_at) "  # noqa: S608
            "VALUES ($1, $2, $3, $4, clock_timestamp()) ON CONFLICT (key) DO UPDATE SET "
            "revoked_at = EXCLUDED.revoked_at, event_type = EXCLUDED.event_type, "
            "event_id = EXCLUDED.event_id, updated_at = EXCLUDED.updated_at "
            f"WHERE {self.table}.revoked_at < EXCLUDED.revoked_at",
            key, event.recordedtime, event.type, event.id,
        )  # fmt: skip
        self._remember(key, event.recordedtime, event.type)  # seen here before any refresh
        log.info("access withdrawn key=%s event=%s recorded=%s", key, event.type,
                 event.recordedtime.isoformat())  # fmt: skip
        return True

    async def refresh(self) -> None:
        """Bring this process's copy of the table up to date: the rows written since the
        last refresh (less ``_OVERLAP``), by this process or by another of the service's."""
        since = _NO_IAT if self._read_up_to is None else self._read_up_to - _OVERLAP
        rows = await self.pool.fetch(
            f"SELECT key, revoked_at, event_type, updated_at FROM {self.table} "  # noqa: S608
            "WHERE updated_at >= $1",
            since,
        )
        for row in rows:
            self._remember(str(row["key"]), row["revoked_at"], str(row["event_type"]))
            if self._read_up_to is None or row["updated_at"] > self._read_up_to:
                self._read_up_to = row["updated_at"]

    def _remember(self, key: str, revoked_at: datetime, event_type: str) -> None:
        known = self._withdrawn.get(key)
        if known is None or known[0] < revoked_at:
            self._withdrawn[key] = (revoked_at, event_type)

    def refusal(self, principal: Principal) -> tuple[str, datetime] | None:
        """The earliest withdrawal (event type, time) that refuses ``principal``'s token,
        or None, as of the last ``refresh`` and this process's own ``apply``."""
        issued = principal.issued_at if principal.issued_at is not None else _NO_IAT
        found = [self._withdrawn.get(session_key(principal.session_id))]
        found += [w for w in map(self._withdrawn.get, keys_of(principal)) if w and w[0] >= issued]
        withdrawals = sorted(w for w in found if w is not None)
        return None if not withdrawals else (withdrawals[0][1], withdrawals[0][0])


@dataclass
class RevocationFeed:
    """How far the revocation view has read its topic, checked against the broker; and the
    gate of every request with an access token (``admit``)."""

    view: RevocationView
    bootstrap: str
    topic: str
    group_id: str
    max_lag: float = 10.0  # seconds without confirmation before requests are refused
    # after start, a request waits this long (or max_lag, if longer) for the first
    # confirmation: joining the consumer group takes seconds on a loaded machine, and a
    # request that waits is refused nothing it should not be
    startup_wait: float = 25.0
    check_every: float = 0.5
    clock: Callable[[], float] = time.monotonic
    _confirmed: float | None = None  # monotonic time as of which the view had read all
    _started: float = field(default_factory=time.monotonic)
    _pending: list[tuple[float, dict[TopicPartition, int]]] = field(default_factory=list)
    _problem: str = "not yet checked"
    _first: asyncio.Event = field(default_factory=asyncio.Event)
    _unreadable: str | None = None  # why the last refresh of the view failed, if it did

    def confirmed_age(self) -> float | None:
        """Seconds since the view was last confirmed caught up (None: never)."""
        return None if self._confirmed is None else self.clock() - self._confirmed

    def fresh(self) -> bool:
        age = self.confirmed_age()
        return age is not None and age <= self.max_lag

    async def admit(self, principal: Principal) -> None:
        """Nothing, if the token's access stands; else ``TokenRevoked`` (401), or
        ``RevocationsUnconfirmed`` (503) while the view cannot be confirmed caught up. A
        request made before the first confirmation since start waits for it, up to
        ``startup_wait`` (or ``max_lag``, if longer) from start."""
        if self._confirmed is None:
            wait = max(self.max_lag, self.startup_wait)
            remaining = wait - (self.clock() - self._started)
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._first.wait(), remaining)
        if not self.fresh():
            raise RevocationsUnconfirmed(
                "this service cannot confirm it has read every withdrawal of access from "
                f"the identity topic ({self._problem}); nothing was done: try again later",
                reason=self._problem,
                confirmed_seconds_ago=self.confirmed_age(),
                max_lag_seconds=self.max_lag,
                retry_after_seconds=max(1, round(self.check_every * 2)),
            )
        if self._unreadable is not None:  # whether access was withdrawn cannot be told
            raise RevocationsUnconfirmed(
                "this service cannot read its view of withdrawn access "
                f"({self._unreadable}); nothing was done: try again later",
                reason=f"revocations view unreadable: {self._unreadable}",
                retry_after_seconds=max(1, round(self.check_every * 2)),
            )
        refused = self.view.refusal(principal)
        if refused is not None:
            event_type, revoked_at = refused
            raise TokenRevoked(
                f"access of this token was withdrawn ({event_type.split('.')[0]} recorded "
                f"{revoked_at.isoformat()}): log in again",
                withdrawn_by=event_type,
                withdrawn_at=revoked_at.isoformat(),
            )

    async def check(self, kafka: KafkaOffsets) -> None:
        """One look at the broker: confirm the view as of the latest check whose end
        offsets it has committed."""
        now = self.clock()
        ends = await kafka.end_offsets([self.topic])
        committed = await kafka.committed(self.group_id)
        # read after the committed offsets: the copy then holds every withdrawal they cover
        try:
            await asyncio.wait_for(self.view.refresh(), _READ_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            self._unreadable = type(error).__name__
            self._problem = f"revocations view unreadable: {self._unreadable}"
            return
        self._unreadable = None
        self._pending.append((now, ends))
        read = [t for t, e in self._pending if _caught_up(e, committed)]
        if read:
            self._confirmed = max(read[-1], self._confirmed or read[-1])
            self._pending = [(t, e) for t, e in self._pending if t > read[-1]]
            self._first.set()
            self._problem = "ok"
        else:
            lag = sum(max(0, end - committed.get(tp, 0)) for tp, end in ends.items())
            self._problem = f"{lag} identity records not yet read"
        self._pending = self._pending[-_KEEP:]

    async def run(self, stopping: asyncio.Event) -> None:
        """Check every ``check_every`` seconds until ``stopping``; a failed check (the
        broker unreachable) confirms nothing, so the view ages towards refusal."""
        kafka = KafkaOffsets(self.bootstrap, timeout_ms=int(max(self.check_every, 1) * 2000))
        failing = False
        try:
            while not stopping.is_set():
                try:
                    await asyncio.wait_for(self.check(kafka), self.max_lag)
                except Exception as error:
                    self._problem = f"identity topic offsets unreadable: {type(error).__name__}"
                    if not failing:  # once when the outage begins, not at every check
                        log.warning("revocation check failing topic=%s error=%r", self.topic,
                                    error)  # fmt: skip
                    failing = True
                    await kafka.__aexit__()
                    kafka = KafkaOffsets(self.bootstrap, kafka.timeout_ms)
                else:
                    if failing:
                        log.info("revocation check answering again topic=%s", self.topic)
                    failing = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.check_every)
        finally:
            await kafka.__aexit__()

    async def problems(self) -> dict[str, str]:
        """``/ready``: ``revocations`` is ok while the view is confirmed within ``max_lag``."""
        if self.fresh() and self._unreadable is None:
            return {CHECK: "ok"}
        if self._unreadable is not None:
            return {CHECK: f"revocations_unconfirmed: {self._problem}"}
        age = self.confirmed_age()
        since = "never since start" if age is None else f"{age:.1f}s ago"
        return {CHECK: f"revocations_unconfirmed: last confirmed {since} "
                       f"(limit {self.max_lag:g}s): {self._problem}"}  # fmt: skip


_KEEP = 64  # checks remembered while the view is behind
_READ_TIMEOUT = 5.0  # seconds a check waits for the view's database
# a refresh re-reads rows written this long before the newest it has seen: ``updated_at``
# is taken as the row is written, just before its (single-statement) commit, so a row
# committed after a later one is still read unless its commit took longer than this
_OVERLAP = timedelta(seconds=60)
_NO_IAT = datetime(1970, 1, 1, tzinfo=UTC)  # a token without iat: every withdrawal counts


def _caught_up(ends: dict[TopicPartition, int], committed: dict[TopicPartition, int]) -> bool:
    return all(committed.get(tp, 0) >= end for tp, end in ends.items())
