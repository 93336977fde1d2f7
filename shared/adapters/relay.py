"""The relay: publishes every committed event of a service's store to its Kafka topic.

Transactional-outbox semantics through the event store's notification log:
- only committed events are read (the log shows nothing else), in commit order
  (eventsourcing locks the table on insert, so ids are assigned in commit order;
  gaps from failed inserts are skipped, never waited for);
- the position is saved in the service's own database after the broker has
  acknowledged the batch, so a crash repeats events (same event id), never loses one;
- one relay per topic holds a PostgreSQL advisory lock; a second one waits as a standby;
- it wakes on the store's LISTEN/NOTIFY channel, or after ``poll_interval``;
- broker or database outages are retried with a capped backoff, from the saved position,
  and logged once when they begin and once when they end.

One record cannot stop it. A record that cannot be published (its mapping fails, or
it is larger than the topic takes) is a defect: it is quarantined
(``shared.adapters.outbox``) with its reason, and so is every later record of the same Kafka
key, so that each key keeps its order; the other keys go on. The quarantine is retried
when a relay session starts (a fixed release is a restart), after
``quarantine_retry`` seconds (doubling, at most 15 minutes), and at once when an
operator asks (``python -m shared.adapters.quarantine retry``). Readiness fails while anything
is quarantined, or while the oldest unpublished event is older than ``stall_after``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from shared.adapters.outbox import Backlog, Outbox, Outgoing
from shared.adapters.readings import KafkaOffsets, Readings
from shared.adapters.topics import topic_config
from shared.kernel.envelope import CONTENT_TYPE
from shared.kernel.settings import ServiceSettings, seconds, stall_seconds

log = logging.getLogger(__name__)

# The broker refuses these for the record itself: retrying the same bytes cannot help.
RECORD_REFUSED = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTimestampError,
)
RETRY_CHANNEL = "trialledger_relay_retry"  # NOTIFY <channel>, '<topic>': retry the quarantine
_PRODUCER_MAX_REQUEST = 1_048_576  # aiokafka's default max_request_size


@dataclass(frozen=True)
class RelayOptions:
    batch_size: int = 200
    poll_interval: float = 1.0  # seconds between looks when no NOTIFY arrives
    max_backoff: float = 5.0  # seconds, the longest wait between retries of an outage
    request_timeout_ms: int = 10_000
    stall_after: float = 30.0  # seconds: an older unpublished event makes readiness fail
    quarantine_retry: float = 60.0  # seconds before the first automatic retry of a hold
    quarantine_retry_max: float = 900.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RelayOptions:
        """``TL_STALL_SECONDS`` (default 30) and ``TL_QUARANTINE_RETRY_SECONDS`` (60)."""
        env = dict(os.environ if env is None else env)
        return cls(
            stall_after=stall_seconds(env),
            quarantine_retry=seconds(env, "TL_QUARANTINE_RETRY_SECONDS", cls.quarantine_retry),
        )


def create_relay(outbox: Outbox, settings: ServiceSettings) -> Relay:
    """The relay of a service run with ``settings`` (options from the environment)."""
    return Relay(outbox, settings.kafka_bootstrap, RelayOptions.from_env())


class Relay:
    """Follows one service's notification log and publishes it to the service's topic."""

    def __init__(self, outbox: Outbox, bootstrap: str, options: RelayOptions | None = None):
        self.outbox = outbox
        self.bootstrap = bootstrap
        self.topic = outbox.topic
        self.options = options or RelayOptions()
        self.position = 0  # last notification id acknowledged or quarantined
        self.max_record_bytes = _PRODUCER_MAX_REQUEST
        self._held: dict[str, int] = {}  # Kafka key -> first quarantined notification id
        self._wake = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_retry = 0.0
        self._retry_wait = self.options.quarantine_retry
        self._outage = _Outage(self.topic)

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish until ``stopping`` is set, surviving broker and database outages."""
        self._stopping = stopping
        backoff = 0.2
        while not stopping.is_set():
            try:
                async with AsyncExitStack() as stack:
                    connection = await self._connect(stack, stopping)
                    if connection is None:
                        return
                    producer = await self._producer(stack)
                    await self.retry_quarantine(connection, producer)
                    self._outage.ended()
                    backoff = 0.2
                    await self._pump(connection, producer, stopping)
            except TopicLimitChanged as change:
                log.warning("relay restarting its session topic=%s: %s", self.topic, change)
            except Exception as error:  # any outage: wait, then resume from the saved position
                self._outage.failed(error, self.position, backoff)
                await _wait_any(stopping, timeout=backoff)
                backoff = min(backoff * 2, self.options.max_backoff)

    # --- what it reports ---------------------------------------------------------------

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        """Relay lag (events stored after the relay's position), the age of the oldest
        unpublished event and the quarantined count, all read from the database, so that
        a standby relay reports the active one's state."""
        backlog = await self.outbox.backlog()
        return Readings(
            relay_lag={self.topic: backlog.unpublished},
            relay_oldest_unpublished={self.topic: backlog.oldest_unpublished_age or 0.0},
            relay_quarantined={self.topic: len(backlog.quarantined)},
        )

    async def problems(self) -> dict[str, str]:
        """Readiness: ``{"relay": reason}`` while events are stuck or quarantined."""
        return {
            "relay": stall_reason(await self.outbox.backlog(), self.options.stall_after) or "ok"
        }

    # --- publishing --------------------------------------------------------------------

    async def publish_pending(
        self, connection: asyncpg.Connection, producer: AIOKafkaProducer
    ) -> int:
        """Publish (or quarantine) one batch after the saved position; returns its size."""
        # read and decoded in one visit to the outbox's thread (each visit waits for a
        # turn of a busy service's event loop)
        outgoing = await self.outbox.reading(
            self.outbox.events, self.position, self.options.batch_size
        )
        if not outgoing:
            return 0
        sent: list[tuple[Outgoing, asyncio.Future[Any]]] = []
        quarantine: list[tuple[Outgoing, str, int | None]] = []
        for record in outgoing:
            refusal = self._refusal(record)
            if refusal is None:
                refusal = await self._send(producer, record, sent)
            if refusal is not None:
                quarantine.append(self._hold(record, refusal))
        await self._acknowledged(sent, quarantine)
        quarantine.sort(key=lambda q: q[0].position)
        last = outgoing[-1].position
        await self.outbox.save(connection, last, quarantine)
        self.position = last
        for record, reason, held_behind in quarantine:
            _log_quarantined(self.topic, record, reason, held_behind)
        log.info("relay published topic=%s count=%d quarantined=%d position=%d",
                 self.topic, len(sent), len(quarantine), last)  # fmt: skip
        return len(outgoing)

    async def retry_quarantine(
        self, connection: asyncpg.Connection, producer: AIOKafkaProducer
    ) -> tuple[int, int]:
        """Publish the quarantined records that now can be, in store order; a record stays
        held while an earlier one of its key does. Returns (released, still held)."""
        self._retry_now.clear()
        held = await self.outbox.quarantined(connection)
        if held and await self._topic_limit() != self.max_record_bytes:
            raise TopicLimitChanged("the topic's max.message.bytes changed: new producer")
        self._held = {}
        released = 0
        for row in held:
            notification = await self.outbox.reading(self.outbox.notification, row.position)
            if notification is None:  # cannot happen: stored events are never deleted
                raise LookupError(f"quarantined notification {row.position} is not in the store")
            record = await self.outbox.reading(self.outbox.prepare, notification)
            reason = self._refusal(record)
            if reason is None:
                sent: list[tuple[Outgoing, asyncio.Future[Any]]] = []
                reason = await self._send(producer, record, sent)
                failed: list[tuple[Outgoing, str, int | None]] = []
                await self._acknowledged(sent, failed)
                reason = failed[0][1] if failed else reason
            if reason is None:
                await self.outbox.release(connection, row.position)
                released += 1
            else:
                _, reason, held_behind = self._hold(record, reason)
                await self.outbox.still_held(connection, row.position, reason, held_behind)
        self._schedule_retry(bool(self._held))
        if held:
            log.warning("relay quarantine retried topic=%s released=%d still_held=%d",
                        self.topic, released, len(held) - released)  # fmt: skip
        return released, len(held) - released

    def _refusal(self, record: Outgoing) -> str | None:
        """Why ``record`` must be quarantined before it is even sent, if it must."""
        if record.key in self._held:
            return f"held behind notification {self._held[record.key]} of the same key"
        if record.problem is not None:
            return record.problem
        size = len(record.value or b"") + len(record.key.encode())
        if size > self.max_record_bytes:
            return (f"the published event is {size} bytes; the topic takes at most "
                    f"{self.max_record_bytes} (max.message.bytes)")  # fmt: skip
        return None

    def _hold(self, record: Outgoing, reason: str) -> tuple[Outgoing, str, int | None]:
        """Quarantine ``record``; every later record of its key is held behind it."""
        held_behind = self._held.get(record.key)
        self._held.setdefault(record.key, record.position)
        self._schedule_retry(True)
        return record, reason, held_behind

    async def _send(
        self,
        producer: AIOKafkaProducer,
        record: Outgoing,
        sent: list[tuple[Outgoing, asyncio.Future[Any]]],
    ) -> str | None:
        try:
            future = await producer.send(
                self.topic,
                value=record.value,
                key=record.key.encode(),
                headers=[("content-type", CONTENT_TYPE.encode())],
            )
        except RECORD_REFUSED as error:
            return f"the producer refused it: {type(error).__name__}: {error}"
        sent.append((record, future))
        return None

    async def _acknowledged(
        self,
        sent: Sequence[tuple[Outgoing, asyncio.Future[Any]]],
        quarantine: list[tuple[Outgoing, str, int | None]],
    ) -> None:
        """Wait for the broker's acknowledgements. A record the broker refuses for itself
        is quarantined; any other failure is an outage (the batch is sent again)."""
        # The idempotent producer retries a send until the broker is back (in order, without
        # duplicates), so this wait lasts as long as an outage, unless the relay is stopping.
        delivered = asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        if not await _first(delivered, self._stopping):
            raise RelayStopped(f"stopped with {len(sent)} events unacknowledged")
        outcomes = delivered.result()
        await self._limit_unchanged_if_too_large(outcomes)
        for (record, _), outcome in zip(sent, outcomes, strict=True):
            if isinstance(outcome, RECORD_REFUSED):
                reason = f"the broker refused it: {type(outcome).__name__}: {outcome}"
                quarantine.append(self._hold(record, reason))
            elif isinstance(outcome, BaseException):
                raise outcome

    async def _limit_unchanged_if_too_large(self, outcomes: Sequence[Any]) -> None:
        """A batch the broker finds too large because the topic's limit was lowered since
        this session began is no fault of its records: a new session sends them again,
        each refused on its own merits, instead of quarantining all that rode with one."""
        too_large = (MessageSizeTooLargeError, RecordListTooLargeError)
        if any(isinstance(o, too_large) for o in outcomes):
            limit = await self._topic_limit()
            if limit != self.max_record_bytes:
                raise TopicLimitChanged(
                    f"the topic's max.message.bytes is now {limit}, was {self.max_record_bytes}"
                )

    def _schedule_retry(self, needed: bool) -> None:
        if not needed:
            self._retry_wait = self.options.quarantine_retry
            self._next_retry = float("inf")
        elif self._next_retry == float("inf") or self._next_retry <= time.monotonic():
            self._next_retry = time.monotonic() + self._retry_wait
            self._retry_wait = min(self._retry_wait * 2, self.options.quarantine_retry_max)

    async def _pump(
        self, connection: asyncpg.Connection, producer: AIOKafkaProducer, stopping: asyncio.Event
    ) -> None:
        while not stopping.is_set():
            self._wake.clear()
            if self._retry_now.is_set() or time.monotonic() >= self._next_retry:
                await self.retry_quarantine(connection, producer)
            if await self.publish_pending(connection, producer) >= self.options.batch_size:
                continue  # more are waiting: no pause between full batches
            timeout = min(self.options.poll_interval, max(0.0, self._next_retry - time.monotonic()))
            await _wait_any(stopping, self._wake, self._retry_now, timeout=timeout)

    async def _connect(
        self, stack: AsyncExitStack, stopping: asyncio.Event
    ) -> asyncpg.Connection | None:
        connection = await asyncpg.connect(self.outbox.database.dsn, timeout=10)
        stack.push_async_callback(connection.close)
        first_relay = not await self.outbox.has_tables(connection)
        await self.outbox.create_tables(connection)
        lock_key = f"relay:{self.outbox.database.schema}:{self.topic}"
        while not await connection.fetchval(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lock_key
        ):
            log.debug("relay standing by: another relay holds topic=%s", self.topic)
            if await _wait_any(stopping, timeout=self.options.poll_interval):
                return None
        self.position = await self.outbox.saved_position(connection)
        await self.outbox.decide_form(connection, nothing_published=first_relay)
        channel = getattr(self.outbox.application.recorder, "channel_name", None)
        if channel:
            await connection.add_listener(channel, lambda *_: self._wake.set())
        await connection.add_listener(RETRY_CHANNEL, self._on_retry_request)
        return connection

    def _on_retry_request(self, *args: Any) -> None:
        payload = args[-1] if args else ""
        if payload in ("", self.topic):
            self._retry_now.set()

    async def _topic_limit(self) -> int:
        config = await topic_config(self.bootstrap, self.topic)
        return min(int(config.get("max.message.bytes", _PRODUCER_MAX_REQUEST)),
                   _PRODUCER_MAX_REQUEST)  # fmt: skip

    async def _producer(self, stack: AsyncExitStack) -> AIOKafkaProducer:
        # A record larger than the topic takes would fail the batch it rides in: the
        # producer never builds a request larger than the topic's limit, and a record
        # over it is refused before it is sent.
        self.max_record_bytes = await self._topic_limit()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,  # with acks=all: no duplicates from the producer's retries
            acks="all",
            request_timeout_ms=self.options.request_timeout_ms,
            max_request_size=self.max_record_bytes,
            max_batch_size=min(16_384, self.max_record_bytes),
            client_id=f"relay-{self.topic}",
        )
        stack.push_async_callback(_stop_producer, producer, self.topic)
        await producer.start()
        return producer


def stall_reason(head: Backlog, stall_after: float) -> str | None:
    """Why the store's events are not reaching the topic, or None while they are."""
    if head.quarantined:
        first = head.quarantined[0]
        return (
            f"quarantined: {len(head.quarantined)} event(s) of topic {head.topic} cannot be "
            f"published; first at store position {first.position} ({first.event_type}, "
            f"event {first.event_id}): {first.reason} (docs/operations.md, Quarantine)"
        )[:600]
    age = head.oldest_unpublished_age
    if head.oldest_unpublished is not None and age is not None and age > stall_after:
        return (
            f"stalled: topic {head.topic}: store position {head.position}, published "
            f"{head.published_position}; the oldest unpublished event (store position "
            f"{head.oldest_unpublished.position}) was recorded {age:.0f}s ago"
        )
    return None


@dataclass
class _Outage:
    """One log line when an outage begins and one when it ends, not one per retry."""

    topic: str
    since: float | None = None
    attempts: int = 0
    errors: set[str] = field(default_factory=set)

    def failed(self, error: Exception, position: int, retry_in: float) -> None:
        self.attempts += 1
        kind = type(error).__name__
        if self.since is None:
            self.since = time.monotonic()
            log.warning("relay interrupted topic=%s position=%s error=%r retrying every "
                        "%.1fs or less", self.topic, position, error, retry_in)  # fmt: skip
        elif kind not in self.errors:
            log.warning("relay still interrupted topic=%s error=%r", self.topic, error)
        else:
            log.debug("relay retry failed topic=%s error=%r", self.topic, error)
        self.errors.add(kind)

    def ended(self) -> None:
        if self.since is not None:
            log.warning("relay resumed topic=%s after=%.1fs attempts=%d",
                        self.topic, time.monotonic() - self.since, self.attempts)  # fmt: skip
        self.since, self.attempts, self.errors = None, 0, set()


def _log_quarantined(topic: str, record: Outgoing, reason: str, held_behind: int | None) -> None:
    if held_behind is None:
        log.error("relay quarantined topic=%s position=%d event_id=%s type=%s key=%s reason=%s",
                  topic, record.position, record.event_id, record.event_type, record.key,
                  reason)  # fmt: skip
    else:
        log.warning("relay held topic=%s position=%d behind=%d key=%s",
                    topic, record.position, held_behind, record.key)  # fmt: skip


class RelayStopped(Exception):
    """The relay was asked to stop before the broker acknowledged a batch."""


class TopicLimitChanged(Exception):
    """The topic's size limit changed while records were held for it: a new session (and
    producer) takes the new limit."""


async def _first(delivered: asyncio.Future[Any], stopping: asyncio.Event) -> bool:
    """Wait for ``delivered`` or ``stopping``; True when delivered came first."""
    stop_wait = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({delivered, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_wait.cancel()
    if delivered.done():
        return True
    delivered.add_done_callback(_consume_outcome)
    return False


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: an abandoned batch is republished after restart


async def _stop_producer(producer: AIOKafkaProducer, topic: str) -> None:
    # stop() flushes; with the broker gone it would wait forever, so it gets a few seconds.
    try:
        await asyncio.wait_for(producer.stop(), timeout=5)
    except TimeoutError:
        log.warning("relay producer abandoned unflushed topic=%s", topic)


async def _wait_any(*events: asyncio.Event, timeout: float) -> bool:
    """Wait until one of ``events`` is set or ``timeout`` passes; True if the first is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return events[0].is_set()
