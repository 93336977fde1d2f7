"""Local views of another service's topic, one row of facts per subject.

A service that must know something another service decided (infusion: who is enrolled;
adverse events: when each subject was infused) keeps a view of that service's topic in
its own database, fed by a faststream subscription:

- ``reduce`` turns an event into the facts it establishes (or None: not relevant);
- rows are keyed by ``shared.study.record_key(study, subject)``, the Kafka key of the
  records they come from: the first study's rows by the subject id alone, as before
  studies were named, another study's by ``<study>/<subject>``, so the same subject id
  in two studies is two rows; readers name the study (the first study's by default);
- an event is applied only when its record version is newer than the row's, so a
  redelivery, or a replay after a restart, changes nothing;
- an unreadable record goes to ``<table>_dead_letters`` and the subscription goes on;
- the offset is committed after the handler (at least once); a database failure nacks
  and the record comes again, after a pause that doubles up to 5 s while failures last.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from weakref import WeakKeyDictionary

import asyncpg
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from shared.adapters.pools import PooledStore
from shared.adapters.readings import KafkaOffsets, Readings, lag_by_topic
from shared.kernel.envelope import CloudEvent
from shared.kernel.logs import adopt_library_loggers, cloudevent_correlation, correlated
from shared.kernel.settings import DatabaseSettings
from shared.kernel.storable import unstorable_record
from shared.study import DEFAULT_STUDY_ID, record_key

log = logging.getLogger(__name__)
Reduce = Callable[[CloudEvent], dict[str, Any] | None]
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")


class _LocalView(PooledStore):
    """A view table in this service's database, with its dead letters."""

    SCHEMA = ""  # the view's own table; "{table}" is replaced by its name
    POOL: ClassVar[dict[str, Any]] = {"min_size": 1, "max_size": 4}  # asyncpg.create_pool options

    def __init__(self, database: DatabaseSettings, table: str, reduce: Reduce) -> None:
        if not _NAME.fullmatch(table):
            raise ValueError(f"view table name {table!r} is not a plain identifier")
        self.database = database
        self.table = table
        self.reduce = reduce
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.database.dsn,
            server_settings={"search_path": f'"{self.database.schema}"'},
            **self.POOL,
        )
        await self.pool.execute(
            self.SCHEMA.replace("{table}", self.table) + "; "
            f"CREATE TABLE IF NOT EXISTS {self.table}_dead_letters (id bigserial PRIMARY KEY, "
            "topic text NOT NULL, kafka_partition integer NOT NULL, kafka_offset bigint NOT NULL, "
            "record_value bytea, reason text NOT NULL, "
            "received_at timestamptz NOT NULL DEFAULT now())"
        )

    def describe(self) -> str:
        return f"the {self.table} view"

    async def dead_letter_count(self) -> int:
        """How many records this view could not read (kept for an operator to inspect)."""
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {self.table}_dead_letters"))  # noqa: S608

    async def _read(
        self, value: bytes | None, topic: str, partition: int, offset: int
    ) -> CloudEvent | None:
        """The record as an event, or None after sending it to the dead letters."""
        try:
            event = CloudEvent.from_kafka_value(value or b"")
        except (ValidationError, ValueError) as error:
            reason = f"unreadable: {error}"[:500]
        else:
            # text the view's table cannot hold would fail the record again and again
            unstorable = unstorable_record(value or b"")
            if unstorable is None:
                return event
            reason = unstorable
        await self._dead_letter(value, topic, partition, offset, reason)
        return None

    async def _dead_letter(
        self, value: bytes | None, topic: str, partition: int, offset: int, reason: str
    ) -> None:
        """Keep a record the view cannot apply, with why, for an operator to inspect."""
        log.warning("view dead letter view=%s offset=%s reason=%s", self.table, offset, reason)
        await self.pool.execute(
            f"INSERT INTO {self.table}_dead_letters (topic, kafka_partition, "  # noqa: S608
            "kafka_offset, record_value, reason) VALUES ($1, $2, $3, $4, $5)",
            topic, partition, offset, value, reason,
        )  # fmt: skip


class SubjectView(_LocalView):
    """Facts per subject, from one topic, in this service's database."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS {table} (subject_id text PRIMARY KEY, "
        "facts jsonb NOT NULL, record_version integer NOT NULL, event_id uuid NOT NULL, "
        "updated_at timestamptz NOT NULL DEFAULT now())"
    )

    async def facts(
        self, subject_id: str, study_id: str = DEFAULT_STUDY_ID
    ) -> dict[str, Any] | None:
        """The facts of a subject of ``study_id`` (``subject_id`` may also be the subject's
        record key, ``record_key(study, subject)``, with the first study's id)."""
        raw = await self.pool.fetchval(
            f"SELECT facts FROM {self.table} WHERE subject_id = $1",  # noqa: S608
            record_key(study_id, subject_id),
        )
        return None if raw is None else dict(json.loads(raw))

    async def all_facts(self, study_id: str = DEFAULT_STUDY_ID) -> dict[str, dict[str, Any]]:
        """Every subject's facts in ``study_id``, by subject id (a trial has few subjects)."""
        prefix = record_key(study_id, "")
        if prefix:  # another study's rows: "<study>/<subject>"
            rows = await self.pool.fetch(
                f"SELECT subject_id, facts FROM {self.table} "  # noqa: S608
                "WHERE starts_with(subject_id, $1)",
                prefix,
            )
        else:  # the first study's: the subject id alone (a subject id has no "/")
            rows = await self.pool.fetch(
                f"SELECT subject_id, facts FROM {self.table} "  # noqa: S608
                "WHERE strpos(subject_id, '/') = 0"
            )
        return {r["subject_id"][len(prefix) :]: dict(json.loads(r["facts"])) for r in rows}

    async def apply(self, value: bytes | None, topic: str, partition: int, offset: int) -> bool:
        """Apply one record; False if it went to the dead letters."""
        event = await self._read(value, topic, partition, offset)
        if event is None:
            return False
        facts = self.reduce(event)
        if facts is None or event.subject is None:
            return True  # not a fact this view keeps
        await self.pool.execute(
            f"INSERT INTO {self.table} (subject_id, facts, record_version, event_id) "  # noqa: S608
            "VALUES ($1, $2, $3, $4) ON CONFLICT (subject_id) DO UPDATE SET "
            f"facts = {self.table}.facts || EXCLUDED.facts, "
            "record_version = EXCLUDED.record_version, event_id = EXCLUDED.event_id, "
            f"updated_at = now() WHERE {self.table}.record_version < EXCLUDED.record_version",
            record_key(event.studyid, event.subject),
            json.dumps(facts),
            int(event.data["version"]),
            event.id,
        )
        return True


class View(Protocol):
    async def apply(self, value: bytes | None, topic: str, partition: int, offset: int) -> bool: ...

    async def dead_letter_count(self) -> int: ...


@dataclass
class Feed:
    """One subscription of a view, and what it handled since the process started."""

    topic: str
    group_id: str
    view: View
    handled: Counter[str] = field(default_factory=Counter)  # outcome -> messages
    failures: int = 0  # in a row: a view whose database is down backs off, not spins


# Feeds by broker, so that ``Subscriptions(broker)`` can report on what ``subscribe`` set
# up; weak, so that a broker that is dropped takes its feeds with it.
_FEEDS: WeakKeyDictionary[KafkaBroker, list[Feed]] = WeakKeyDictionary()


def kafka_broker(bootstrap: str) -> KafkaBroker:
    """A faststream broker for ``bootstrap``, a comma-separated list of brokers (a cluster's):
    faststream hands a string to aiokafka as a one-item list, which aiokafka does not split."""
    return KafkaBroker([server.strip() for server in bootstrap.split(",") if server.strip()])


def subscribe(broker: KafkaBroker, topic: str, group_id: str, view: View) -> None:
    """Feed ``view`` from ``topic`` through ``broker``, at least once."""
    feed = Feed(topic, group_id, view)
    _FEEDS.setdefault(broker, []).append(feed)

    @broker.subscriber(
        topic, group_id=group_id, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
    )
    async def on_event(message: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = message.raw_message  # one record: batch=False
        with correlated(cloudevent_correlation(record.value)):
            try:
                applied = await view.apply(
                    record.value, record.topic, record.partition, record.offset
                )
            except Exception:
                feed.handled["error"] += 1  # nacked: it comes again, after a pause
                feed.failures += 1
                await asyncio.sleep(min(0.1 * 2 ** min(feed.failures, 6), 5.0))
                raise
            feed.failures = 0
            feed.handled["applied" if applied else "dead_letter"] += 1


class Subscriptions:
    """Runs a faststream broker beside the HTTP server until ``stopping`` is set."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        """Each view's consumer lag (from its group's committed offsets), dead letters
        kept, and messages handled since start."""
        feeds = _FEEDS.get(self.broker, [])
        ends = await kafka.end_offsets(feed.topic for feed in feeds)
        readings = Readings()
        for feed in feeds:
            lag = lag_by_topic(
                {tp: end for tp, end in ends.items() if tp.topic == feed.topic},
                await kafka.committed(feed.group_id),
            )
            readings = readings.merged(Readings(
                consumer_lag={(feed.group_id, feed.topic): lag.get(feed.topic, 0)},
                dead_letters={feed.group_id: await feed.view.dead_letter_count()},
                consumed={(feed.group_id, o): n for o, n in feed.handled.items()},
            ))  # fmt: skip
        return readings

    async def run(self, stopping: asyncio.Event) -> None:
        await self.broker.connect()  # creates faststream's logger: it must log as JSON too
        adopt_library_loggers()
        await self.broker.start()
        try:
            await stopping.wait()
        finally:
            await self.broker.stop()


TRIAL = "trial"  # the key of a study's trial facts (the first study's row)


class TrialFactView(_LocalView):
    """Trial-wide facts from another service's topic (e.g. the latest safety-review
    approval), one JSON document per study, applied in the source's ``sequence`` order.
    The first study's row is ``trial``, as before studies were named; another study's
    ``<study>/trial`` (``record_key``)."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS {table} (fact text PRIMARY KEY, "
        "facts jsonb NOT NULL, source_sequence bigint NOT NULL, "
        "updated_at timestamptz NOT NULL DEFAULT now())"
    )

    async def facts(self, study_id: str = DEFAULT_STUDY_ID) -> dict[str, Any] | None:
        """The trial facts of ``study_id``."""
        raw = await self.pool.fetchval(
            f"SELECT facts FROM {self.table} WHERE fact = $1",  # noqa: S608
            record_key(study_id, TRIAL),
        )
        return None if raw is None else dict(json.loads(raw))

    async def apply(self, value: bytes | None, topic: str, partition: int, offset: int) -> bool:
        """Apply one record if it establishes a trial fact; False if it went to the dead
        letters."""
        event = await self._read(value, topic, partition, offset)
        if event is None:
            return False
        facts = self.reduce(event)
        if facts is None:
            return True
        await self.pool.execute(
            f"INSERT INTO {self.table} (fact, facts, source_sequence) VALUES ($1, $2, $3) "  # noqa: S608
            "ON CONFLICT (fact) DO UPDATE SET facts = EXCLUDED.facts, "
            "source_sequence = EXCLUDED.source_sequence, updated_at = now() "
            f"WHERE {self.table}.source_sequence < EXCLUDED.source_sequence",
            record_key(event.studyid, TRIAL),
            json.dumps(facts),
            int(event.sequence),
        )
        return True
