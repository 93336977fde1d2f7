"""The relay: publishes every committed event of a service's store to its Kafka topic.

Transactional-outbox semantics through the event store's notification log:
- only committed events are read (the log shows nothing else), in commit order
  (eventsourcing locks the table on insert, so ids are assigned in commit order;
  gaps from failed inserts are skipped, never waited for);
- the position is saved in the service's own database after the broker has
  acknowledged the batch, so a crash repeats events (same event id), never loses one;
- one relay per topic holds a PostgreSQL advisory lock; a second one waits as a standby;
- it wakes on the store's LISTEN/NOTIFY channel, or after ``poll_interval``;
- broker or database outages are retried with a capped backoff, from the saved position.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from shared.envelope import CONTENT_TYPE, CloudEvent, EventData
from shared.readings import KafkaOffsets, Readings
from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)

ToContract = Callable[[Any], EventData]


@dataclass(frozen=True)
class RelayOptions:
    batch_size: int = 200
    poll_interval: float = 1.0  # seconds between looks when no NOTIFY arrives
    max_backoff: float = 5.0  # seconds, the longest wait between retries of an outage
    request_timeout_ms: int = 10_000


class Relay:
    """Follows one application's notification log and publishes it to one topic."""

    def __init__(
        self,
        application: Application[Any],
        to_contract: ToContract,
        database: DatabaseSettings,
        bootstrap: str,
        topic: str,
        options: RelayOptions | None = None,
    ) -> None:
        self.application = application
        self.to_contract = to_contract
        self.database = database
        self.bootstrap = bootstrap
        self.topic = topic
        self.options = options or RelayOptions()
        self.position = 0  # last notification id the broker acknowledged
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

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
                    backoff = 0.2
                    await self._pump(connection, producer, stopping)
            except Exception as error:  # any outage: wait, then resume from the saved position
                log.warning(
                    "relay interrupted topic=%s position=%s error=%r retry_in=%.1fs",
                    self.topic,
                    self.position,
                    error,
                    backoff,
                )
                await _sleep_unless(stopping, backoff)
                backoff = min(backoff * 2, self.options.max_backoff)

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        """Relay lag: the store's last notification id minus the last one acknowledged,
        from the database, so that a standby relay reports the active one's lag (ids
        burnt by failed inserts count too: they are rare and never linger)."""
        latest = await asyncio.to_thread(self.application.recorder.max_notification_id)
        published = await saved_position(self.database, self.topic)
        return Readings(relay_lag={self.topic: max(0, (latest or 0) - published)})

    async def publish_pending(
        self, connection: asyncpg.Connection, producer: AIOKafkaProducer
    ) -> int:
        """Publish one batch after the saved position; returns how many were published."""
        notifications = await asyncio.to_thread(self._select, self.position)
        if not notifications:
            return 0
        acknowledgements = [await self._send(producer, n) for n in notifications]
        # The idempotent producer retries a send until the broker is back (in order, without
        # duplicates), so this wait lasts as long as an outage, unless the relay is stopping.
        delivered = asyncio.gather(*acknowledgements)
        if not await _first(delivered, self._stopping):
            raise RelayStopped(f"stopped with {len(notifications)} events unacknowledged")
        last = notifications[-1].id
        await connection.execute(_sql(_SAVE_POSITION, self.database), self.topic, last)
        self.position = last
        log.info(
            "relay published topic=%s count=%d position=%d", self.topic, len(notifications), last
        )
        return len(notifications)

    async def _pump(
        self, connection: asyncpg.Connection, producer: AIOKafkaProducer, stopping: asyncio.Event
    ) -> None:
        while not stopping.is_set():
            self._wake.clear()
            if await self.publish_pending(connection, producer) >= self.options.batch_size:
                continue  # more are waiting: no pause between full batches
            await _wait_any(stopping, self._wake, timeout=self.options.poll_interval)

    async def _connect(
        self, stack: AsyncExitStack, stopping: asyncio.Event
    ) -> asyncpg.Connection | None:
        connection = await asyncpg.connect(self.database.dsn, timeout=10)
        stack.push_async_callback(connection.close)
        await connection.execute(_sql(_CREATE_TABLE, self.database))
        lock_key = f"relay:{self.database.schema}:{self.topic}"
        while not await connection.fetchval(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lock_key
        ):
            log.info("relay standing by: another relay holds topic=%s", self.topic)
            if await _wait_any(stopping, timeout=self.options.poll_interval):
                return None
        self.position = await _position(connection, self.database, self.topic)
        channel = getattr(self.application.recorder, "channel_name", None)
        if channel:
            await connection.add_listener(channel, lambda *_: self._wake.set())
        return connection

    async def _producer(self, stack: AsyncExitStack) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,  # with acks=all: no duplicates from the producer's retries
            acks="all",
            request_timeout_ms=self.options.request_timeout_ms,
            client_id=f"relay-{self.topic}",
        )
        stack.push_async_callback(_stop_producer, producer, self.topic)
        await producer.start()
        return producer

    def _select(self, after: int) -> Sequence[Notification]:
        return self.application.recorder.select_notifications(
            start=after, limit=self.options.batch_size, inclusive_of_start=False
        )

    async def _send(self, producer: AIOKafkaProducer, notification: Notification) -> Any:
        event = self.application.mapper.to_domain_event(notification)
        data = self.to_contract(event)
        envelope = CloudEvent.wrap(data, sequence=notification.id)
        return await producer.send(
            self.topic,
            value=envelope.to_kafka_value(),
            key=envelope.kafka_key(),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )


# The schema name is checked as an identifier by shared.settings; values are parameters.
_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS {table} (topic text PRIMARY KEY, "
    "notification_id bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
)
_SAVE_POSITION = (
    "INSERT INTO {table} (topic, notification_id) VALUES ($1, $2) ON CONFLICT (topic) "
    "DO UPDATE SET notification_id = EXCLUDED.notification_id, updated_at = now()"
)
_READ_POSITION = "SELECT notification_id FROM {table} WHERE topic = $1"


def _sql(template: str, database: DatabaseSettings) -> str:
    return template.format(table=f'"{database.schema}".relay_positions')


async def _position(connection: asyncpg.Connection, database: DatabaseSettings, topic: str) -> int:
    return int(await connection.fetchval(_sql(_READ_POSITION, database), topic) or 0)


async def saved_position(database: DatabaseSettings, topic: str) -> int:
    """The last notification id the relay of ``topic`` saw acknowledged (0: none yet)."""
    connection = await asyncpg.connect(database.dsn)
    try:
        exists = await connection.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", f'"{database.schema}".relay_positions'
        )
        return await _position(connection, database, topic) if exists else 0
    finally:
        await connection.close()


class RelayStopped(Exception):
    """The relay was asked to stop before the broker acknowledged a batch."""


async def _first(delivered: asyncio.Future[Any], stopping: asyncio.Event) -> bool:
    """Wait for ``delivered`` or ``stopping``; True when delivered came first."""
    stop_wait = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({delivered, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_wait.cancel()
    if delivered.done():
        delivered.result()  # raises a delivery error, if any
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


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    await _wait_any(stopping, timeout=seconds)
