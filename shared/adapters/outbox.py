"""A service's outbox: its event store read as what the relay publishes.

- ``prepare``: a stored notification as the Kafka record the relay sends (key, value),
  or the reason it cannot be one (a defect, never silently skipped).
- The quarantine (``relay_quarantine``, in the service's own database): each record the
  relay could not publish, with its reason. Rows are never deleted; a released row keeps
  when it was released. Every later record of the same Kafka key is held there behind it,
  so that a key's order on the topic is always its order in the store; other keys go on.
- The head: position, count and hash of the last stored event, what the relay has
  published and what waits, for readiness, metrics and the auditors' completeness check.

The relay's saved position lives here too (``relay_positions``): the last notification
id the broker acknowledged or the relay quarantined.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Notification

from shared.adapters.eventstore import ServiceApplication
from shared.kernel.envelope import CloudEvent
from shared.kernel.publication import Publication, Unpublishable, event_id
from shared.kernel.settings import DatabaseSettings, ServiceSettings
from shared.study import DEFAULT_STUDY_ID

T = TypeVar("T")

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# The schema name is checked as an identifier by shared.kernel.settings; values are parameters.
_TABLES = """
CREATE TABLE IF NOT EXISTS {schema}.relay_positions (
    topic text PRIMARY KEY,
    notification_id bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.relay_quarantine (
    topic text NOT NULL,
    notification_id bigint NOT NULL,
    record_id uuid NOT NULL,
    record_version integer NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    kafka_key text NOT NULL,
    reason text NOT NULL,
    held_behind bigint,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 1,
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    PRIMARY KEY (topic, notification_id)
);
CREATE TABLE IF NOT EXISTS {schema}.publication_forms (
    topic text PRIMARY KEY,
    compact_from bigint NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Outgoing:
    """One stored event as the relay would publish it, or why it cannot be."""

    position: int  # the notification id in the store's log
    record_id: UUID
    record_version: int
    event_id: UUID
    event_type: str  # the published type, or the stored class when it cannot be published
    key: str
    recorded_at: datetime | None  # None only when the stored event cannot be read
    value: bytes | None = None
    problem: str | None = None
    study: str | None = None  # the study it recorded (None: unreadable, or none named)

    @property
    def owning_study(self) -> str:
        """The study it is of: a record that names no study (or cannot be read) is the
        first study's, as its published record is."""
        return self.study or DEFAULT_STUDY_ID

    def of_study(self, study_id: str) -> bool:
        return self.owning_study == study_id

    def to_json(self, payload: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {
            "position": self.position,
            "event_id": str(self.event_id),
            "record_id": str(self.record_id),
            "record_version": self.record_version,
        }
        if payload:
            document.update(
                event_type=self.event_type,
                key=self.key,
                recorded_at=None if self.recorded_at is None else self.recorded_at.isoformat(),
                payload=None if self.value is None else self.value.decode(),
                problem=self.problem,
            )
        return document


@dataclass(frozen=True)
class Quarantined:
    """A record the relay could not publish, from ``relay_quarantine``."""

    position: int
    event_id: UUID
    event_type: str
    key: str
    reason: str
    held_behind: int | None
    quarantined_at: datetime
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "key": self.key,
            "reason": self.reason,
            "held_behind": self.held_behind,
            "quarantined_at": self.quarantined_at.isoformat(),
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class Backlog:
    """What waits to be published, and what is held (read from the database: the truth,
    whoever runs the relay). All that readiness and the relay's metrics need, read in a
    few index lookups, so a probe costs the same however large the store grows."""

    topic: str
    position: int  # the newest notification id (0: empty store)
    published_position: int  # last notification id the relay is done with
    unpublished: int  # stored after the published position
    oldest_unpublished: Outgoing | None
    oldest_unpublished_age: float | None  # seconds since it was recorded
    quarantined: Sequence[Quarantined]


@dataclass(frozen=True)
class Head(Backlog):
    """Where the store and its relay stand: the backlog, with the store's count and
    newest event (an auditor's read, ``/store/head``: the count reads the whole store)."""

    service: str
    count: int  # stored events
    last_event_id: UUID | None
    last_event_hash: str | None  # SHA-256 of the last event's published bytes
    read_at: datetime

    def to_json(self) -> dict[str, Any]:
        oldest = self.oldest_unpublished
        return {
            "service": self.service,
            "topic": self.topic,
            "position": self.position,
            "count": self.count,
            "last_event_id": None if self.last_event_id is None else str(self.last_event_id),
            "last_event_hash": self.last_event_hash,
            "published_position": self.published_position,
            "unpublished": self.unpublished,
            "oldest_unpublished": None if oldest is None else oldest.to_json(payload=False),
            "oldest_unpublished_age_seconds": self.oldest_unpublished_age,
            "quarantined": [q.to_json() for q in self.quarantined],
            "read_at": self.read_at.isoformat(),
        }


class Outbox:
    """One service's store, its publication mapping, its topic and its relay's state."""

    def __init__(
        self,
        application: ServiceApplication,
        publication: Publication,
        database: DatabaseSettings,
        topic: str,
    ) -> None:
        table = f"{application.name.lower()}_events"
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"event table name {table!r} is not a plain identifier")
        self.application = application
        self.publication = publication
        self.database = database
        self.topic = topic
        self._schema = f'"{database.schema}"'
        self._events_table = f'{self._schema}."{table}"'
        self._first_seen: dict[int, float] = {}  # unreadable events' age, from first sight
        self._index = _StudyIndex()  # each stored event's study, for the study heads
        # From which position records take the compact form (CloudEvent.to_kafka_value);
        # None until the relay has decided it: every record before is in the first form.
        self.compact_from: int | None = None
        # The relay's reads of the store, and the head's that readiness makes, run in a
        # thread of their own: in the shared default executor they would queue behind
        # every command waiting there (a busy service's commands hold all its threads), so
        # publishing, and /ready, would wait on the very load they follow. (A request's
        # own reads, an auditor's study scan, stay in the default executor.)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"outbox-{topic}")

    @classmethod
    def of(
        cls, application: ServiceApplication, publication: Publication, settings: ServiceSettings
    ) -> Outbox:
        """The outbox of a service run with ``settings`` (its database and topic)."""
        return cls(application, publication, settings.database, settings.topic)

    @property
    def service(self) -> str:
        return self.publication.service

    def sql(self, template: str) -> str:
        return template.format(schema=self._schema, events=self._events_table)

    async def reading(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, a blocking read of the store, in the outbox's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    # --- the store, as published ----------------------------------------------------------

    def select(self, after: int, limit: int) -> Sequence[Notification]:
        """Notifications after ``after``, in log order (blocking: call in a thread)."""
        return self.application.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def notification(self, position: int) -> Notification | None:
        found = self.application.recorder.select_notifications(start=position, limit=1)
        return found[0] if found and found[0].id == position else None

    def prepare(self, notification: Notification) -> Outgoing:
        """The notification as the record the relay sends, or why it cannot be one."""
        record_id = _uuid(notification.originator_id)
        base: dict[str, Any] = {
            "position": notification.id,
            "record_id": record_id,
            "record_version": notification.originator_version,
            "event_id": event_id(record_id, notification.originator_version),
        }
        try:
            event = self.application.mapper.to_domain_event(notification)
        except Exception as error:  # the stored event cannot even be read back
            problem = f"unreadable: {type(error).__name__}: {error}"[:1000]
            return Outgoing(**base, event_type=notification.topic, key=str(record_id),
                            recorded_at=None, problem=problem)  # fmt: skip
        recorded_at = getattr(event, "timestamp", None)
        try:
            data = self.publication.to_contract(event)
            compact = self.compact_from is not None and notification.id >= self.compact_from
            study = self.publication.study(event)
            envelope = CloudEvent.wrap(data, notification.id, compact, study)
            value = envelope.to_kafka_value()
        except Unpublishable as error:
            return Outgoing(**base, event_type=type(event).__qualname__,
                            key=self.publication.key(event, DEFAULT_STUDY_ID),
                            recorded_at=recorded_at, problem=error.reason,
                            study=self.publication.study(event))  # fmt: skip
        except Exception as error:  # the envelope refused the contract: a defect too
            return Outgoing(**base, event_type=type(event).__qualname__,
                            key=self.publication.key(event, DEFAULT_STUDY_ID),
                            recorded_at=recorded_at,
                            problem=f"{type(error).__name__}: {error}"[:1000],
                            study=self.publication.study(event))  # fmt: skip
        key = envelope.kafka_key(DEFAULT_STUDY_ID).decode()
        return Outgoing(**base, event_type=envelope.type, key=key,
                        recorded_at=recorded_at, value=value, study=study)  # fmt: skip

    def events(self, after: int, limit: int, payload: bool = True) -> list[Outgoing]:
        """Stored events after ``after`` as published (blocking: call in a thread); without
        ``payload`` only their positions and ids, which needs no decoding."""
        notifications = self.select(after, limit)
        if payload:
            return [self.prepare(n) for n in notifications]
        return [
            Outgoing(n.id, _uuid(n.originator_id), n.originator_version,
                     event_id(_uuid(n.originator_id), n.originator_version), n.topic, "", None)
            for n in notifications
        ]  # fmt: skip

    def study_events(
        self, study_id: str, after: int, limit: int
    ) -> tuple[list[Outgoing], int | None]:
        """``study_id``'s stored events among the ``limit`` after ``after`` (blocking: call
        in a thread; each is decoded, which names its study), and the last position read
        if the store may hold more (None: the end). A page may hold fewer than ``limit``
        events, or none: the other studies' are passed over."""
        notifications = self.select(after, limit)
        found = [e for e in map(self.prepare, notifications) if e.of_study(study_id)]
        more = len(notifications) == limit
        return found, notifications[-1].id if more else None

    def _index_store(self) -> None:
        """The study index brought up to the store's end (blocking; under the index's
        lock): only the events stored since its last read are decoded for their study.
        The store is append-only and its notification ids become visible in order (the
        recorder locks the table for each insert; the relay relies on it too), so what
        follows the last position read is all that is new. Should that position no longer
        hold the event read there (a store restored from an older backup, or recreated),
        the index is read again from the start."""
        index = self._index
        if index.read_to and _identity(self.notification(index.read_to)) != index.last_read:
            index.clear()
        while True:
            notifications = self.select(index.read_to, _SCAN)
            for notification in notifications:
                index.add(self.prepare(notification).owning_study, notification.id)
            if notifications:
                index.read_to, index.last_read = notifications[-1].id, _identity(notifications[-1])
            if len(notifications) < _SCAN:
                return

    def _study_scan(self, study_id: str, published: int, quarantined: Sequence[int]) -> _StudyScan:
        """``study_id``'s count, newest event, unpublished count, oldest unpublished, and
        which of the ``quarantined`` positions are its (blocking). The index answers all
        but the two events, which are decoded here."""
        with self._index.lock:
            self._index_store()
            own = self._index.positions.get(study_id, array("q"))
            count = len(own)
            first_waiting = bisect_right(own, published)
            last = own[-1] if own else None
            oldest = own[first_waiting] if first_waiting < count else None
            held = {p for p in quarantined if _holds(own, p)}
        return (count, self._prepared(last), count - first_waiting, self._prepared(oldest),
                held)  # fmt: skip

    def _prepared(self, position: int | None) -> Outgoing | None:
        found = None if position is None else self.notification(position)
        return None if found is None else self.prepare(found)

    async def study_head(self, study_id: str) -> Head:
        """The head as ``study_id`` may see it: the store's newest and published
        positions (which say only that the store grew), and of its own events alone the
        count, the newest, what waits and what is quarantined. Each event is decoded for
        its study once per process (``_index_store``): a call decodes only the events
        stored since the last, and the study's newest and oldest unpublished."""
        backlog = await self.backlog()
        quarantined = [q.position for q in backlog.quarantined]
        count, last, unpublished, oldest, held = await asyncio.to_thread(
            self._study_scan, study_id, backlog.published_position, quarantined
        )
        return Head(
            service=self.service,
            topic=backlog.topic,
            position=backlog.position,
            count=count,
            last_event_id=None if last is None else last.event_id,
            last_event_hash=None if last is None or last.value is None else _sha256(last.value),
            published_position=backlog.published_position,
            unpublished=unpublished,
            oldest_unpublished=oldest,
            oldest_unpublished_age=None if oldest is None else self._age(oldest),
            quarantined=[q for q in backlog.quarantined if q.position in held],
            read_at=datetime.now(UTC),
        )

    # --- the relay's state -------------------------------------------------------------

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(self.sql(_TABLES))

    async def has_tables(self, connection: asyncpg.Connection) -> bool:
        """Whether a relay ever connected to this store (it creates its tables first)."""
        table = self.sql("{schema}.relay_positions")
        return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table))

    async def decide_form(self, connection: asyncpg.Connection, nothing_published: bool) -> None:
        """Fix, once per topic, the first position published in the compact form: the
        first of all where no relay ever ran (``nothing_published``: events stored before,
        such as the first administrator's, were never sent), else the one after the newest
        stored event. Called by the relay holding the topic's lock, so no record at or
        after it was ever published in the first form; a record keeps its form for good,
        which keeps every re-publication byte for byte the same."""
        await connection.execute(
            self.sql(
                "INSERT INTO {schema}.publication_forms (topic, compact_from) "
                "SELECT $1, CASE WHEN $2 THEN 1 ELSE coalesce(max(notification_id), 0) + 1 END "
                "FROM {events} ON CONFLICT (topic) DO NOTHING"
            ),
            self.topic,
            nothing_published,
        )
        await self.load_form(connection)

    async def load_form(self, connection: asyncpg.Connection | None = None) -> None:
        """Read the cutover the relay decided (kept once known: it never changes)."""
        if self.compact_from is not None:
            return
        own = connection is None
        connection = connection or await asyncpg.connect(self.database.dsn, timeout=10)
        try:
            table = self.sql("{schema}.publication_forms")
            if await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                self.compact_from = await connection.fetchval(
                    f"SELECT compact_from FROM {table} WHERE topic = $1",  # noqa: S608
                    self.topic,
                )
        finally:
            if own:
                await connection.close()

    async def saved_position(self, connection: asyncpg.Connection) -> int:
        value = await connection.fetchval(
            self.sql("SELECT notification_id FROM {schema}.relay_positions WHERE topic = $1"),
            self.topic,
        )
        return int(value or 0)

    async def save(
        self,
        connection: asyncpg.Connection,
        position: int,
        quarantine: Sequence[tuple[Outgoing, str, int | None]] = (),
    ) -> None:
        """Save the relay's position and quarantine records in one transaction: a record
        the relay passes over is always either acknowledged or quarantined."""
        async with connection.transaction():
            for outgoing, reason, held_behind in quarantine:
                await connection.execute(
                    self.sql(
                        "INSERT INTO {schema}.relay_quarantine (topic, notification_id, "
                        "record_id, record_version, event_id, event_type, kafka_key, reason, "
                        "held_behind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                        "ON CONFLICT (topic, notification_id) DO NOTHING"
                    ),
                    self.topic, outgoing.position, outgoing.record_id, outgoing.record_version,
                    outgoing.event_id, outgoing.event_type, outgoing.key, reason, held_behind,
                )  # fmt: skip
            await connection.execute(
                self.sql(
                    "INSERT INTO {schema}.relay_positions (topic, notification_id) "
                    "VALUES ($1, $2) ON CONFLICT (topic) DO UPDATE SET "
                    "notification_id = EXCLUDED.notification_id, updated_at = now()"
                ),
                self.topic,
                position,
            )

    async def quarantined(self, connection: asyncpg.Connection) -> list[Quarantined]:
        """The records still held, in store order."""
        rows = await connection.fetch(
            self.sql(
                "SELECT notification_id, event_id, event_type, kafka_key, reason, held_behind, "
                "quarantined_at, attempts FROM {schema}.relay_quarantine "
                "WHERE topic = $1 AND released_at IS NULL ORDER BY notification_id"
            ),
            self.topic,
        )
        return [Quarantined(*row.values()) for row in rows]

    async def release(self, connection: asyncpg.Connection, position: int) -> None:
        await connection.execute(
            self.sql(
                "UPDATE {schema}.relay_quarantine SET released_at = now(), "
                "last_attempt_at = now(), attempts = attempts + 1 "
                "WHERE topic = $1 AND notification_id = $2"
            ),
            self.topic,
            position,
        )

    async def still_held(
        self, connection: asyncpg.Connection, position: int, reason: str, held_behind: int | None
    ) -> None:
        await connection.execute(
            self.sql(
                "UPDATE {schema}.relay_quarantine SET reason = $3, held_behind = $4, "
                "last_attempt_at = now(), attempts = attempts + 1 "
                "WHERE topic = $1 AND notification_id = $2"
            ),
            self.topic, position, reason, held_behind,
        )  # fmt: skip

    # --- the head ----------------------------------------------------------------------

    async def backlog(self) -> Backlog:
        """What waits and what is held, read now (readiness and metrics: no count or
        decoding of the whole store, so a probe's cost does not grow with it)."""
        connection = await asyncpg.connect(self.database.dsn, timeout=10)
        try:
            position, published, unpublished, quarantined = await self._backlog(connection)
        finally:
            await connection.close()
        oldest = await self.reading(self._oldest_waiting, position, published)
        return Backlog(
            topic=self.topic,
            position=position,
            published_position=published,
            unpublished=unpublished,
            oldest_unpublished=oldest,
            oldest_unpublished_age=None if oldest is None else self._age(oldest),
            quarantined=quarantined,
        )

    async def head(self) -> Head:
        """The store's head and its relay's state, read now."""
        connection = await asyncpg.connect(self.database.dsn, timeout=10)
        try:
            position, published, unpublished, quarantined = await self._backlog(connection)
            count = await connection.fetchval(self.sql("SELECT count(*) FROM {events}"))
        finally:
            await connection.close()
        last, oldest = await self.reading(self._ends, position, published)
        return Head(
            service=self.service,
            topic=self.topic,
            position=position,
            count=count,
            last_event_id=None if last is None else last.event_id,
            last_event_hash=None if last is None or last.value is None else _sha256(last.value),
            published_position=published,
            unpublished=unpublished,
            oldest_unpublished=oldest,
            oldest_unpublished_age=None if oldest is None else self._age(oldest),
            quarantined=quarantined,
            read_at=datetime.now(UTC),
        )

    async def _backlog(
        self, connection: asyncpg.Connection
    ) -> tuple[int, int, int, list[Quarantined]]:
        """The newest and published positions, how many wait between them and what is
        held: index lookups, and a count of the waiting events alone."""
        position = await connection.fetchval(
            self.sql("SELECT coalesce(max(notification_id), 0) FROM {events}")
        )
        # read only: before the relay's first start its tables do not exist yet
        relayed = await connection.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", self.sql("{schema}.relay_quarantine")
        )
        published = await self.saved_position(connection) if relayed else 0
        unpublished = await connection.fetchval(
            self.sql("SELECT count(*) FROM {events} WHERE notification_id > $1"), published
        )
        quarantined = await self.quarantined(connection) if relayed else []
        await self.load_form(connection)
        return position, published, unpublished, quarantined

    def _ends(self, position: int, published: int) -> tuple[Outgoing | None, Outgoing | None]:
        last = self.notification(position) if position else None
        return (
            None if last is None else self.prepare(last),
            self._oldest_waiting(position, published),
        )

    def _oldest_waiting(self, position: int, published: int) -> Outgoing | None:
        waiting = self.select(published, 1) if position > published else []
        return self.prepare(waiting[0]) if waiting else None

    def _age(self, outgoing: Outgoing) -> float:
        if outgoing.recorded_at is not None:
            return max(0.0, (datetime.now(UTC) - outgoing.recorded_at).total_seconds())
        first = self._first_seen.setdefault(outgoing.position, time.monotonic())
        return time.monotonic() - first


async def published_position(database: DatabaseSettings, topic: str) -> int:
    """The last notification id the relay of ``topic`` is done with (0: none yet)."""
    connection = await asyncpg.connect(database.dsn)
    try:
        table = f'"{database.schema}".relay_positions'
        if not await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            return 0
        found = await connection.fetchval(
            f"SELECT notification_id FROM {table} WHERE topic = $1",  # noqa: S608
            topic,
        )
        return int(found or 0)
    finally:
        await connection.close()


_SCAN = 2000  # events decoded at a time when the study index is brought up to date
# a study's count, newest event, unpublished count, oldest unpublished, quarantined positions
_StudyScan = tuple[int, Outgoing | None, int, Outgoing | None, set[int]]


class _StudyIndex:
    """Which study each stored event is of, by position, read once (``_index_store``):
    the positions of each study's events in log order (8 bytes an event), and the last
    position read, with the event read there."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # study_head reads it in worker threads
        self.clear()

    def clear(self) -> None:
        self.positions: dict[str, array[int]] = {}  # study -> its positions, ascending
        self.read_to = 0
        self.last_read: tuple[str, int] | None = None  # record id and version there

    def add(self, study_id: str, position: int) -> None:
        self.positions.setdefault(study_id, array("q")).append(position)


def _identity(notification: Notification | None) -> tuple[str, int] | None:
    """Which event a notification is: its record id and version."""
    if notification is None:
        return None
    return str(notification.originator_id), notification.originator_version


def _holds(positions: array[int], position: int) -> bool:
    """Whether ascending ``positions`` hold ``position``."""
    at = bisect_left(positions, position)
    return at < len(positions) and positions[at] == position


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _sha256(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()
