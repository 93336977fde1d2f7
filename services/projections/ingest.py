"""Ingest: every service's topic into the ledger, at least once, deduplicated by event id.

Partitions are assigned by hand and positioned from ``ingest_offsets`` (stored in the
same transaction as the entries), so a crash between the database commit and a Kafka
offset commit neither loses nor doubles an event. Offsets are also committed to Kafka
after the transaction, for monitoring consumer lag.

A record that is not a CloudEvent of a known type and valid payload goes to the
dead-letter table with its reason; the consumer goes on.

Each study has a ledger and an ingester of its own (``services.projections.studies``),
reading every topic: an ingester appends the records whose CloudEvent ``studyid`` is its
study's (none: the first study's) and passes over the others, counted as ``other_study``.
Another study's ingester tells them by their Kafka key before reading the value: it reads
only the keys its study's records carry (``<study>/...``, ``study_key``), so a record is
parsed by the first study's ingester and by its own study's, not by every study's. The
``studyid`` stays the authority: the first study's ingester, which parses every record,
keeps the dead letters of records no study can claim: those that are not CloudEvents,
those of a study this deployment does not serve, and those of a served study whose key is
not that study's (its ledger's ingester would pass them over unread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple, Union, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import Field, TypeAdapter, ValidationError, create_model

from services.projections import merkle
from services.projections.domain import Checkpoint, Trust, sign_checkpoint
from services.projections.integrity import check_ledger
from services.projections.ledger import DeadLetter, LedgerStore, NewEntry
from services.projections.merkle import Frontier
from services.projections.studies import group_id
from shared.adapters.readings import KafkaOffsets, Readings, lag_by_topic
from shared.adapters.topics import partitions_of
from shared.kernel.envelope import CloudEvent, EventData, study_key
from shared.kernel.storable import unstorable_record
from shared.study import DEFAULT_STUDY_ID

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
OTHER_STUDY = "other_study"  # a record of another study's ledger: passed over


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int = 500
    # records a batch while the last one was full (records wait on the topics): fewer
    # transactions while a backlog lasts; back to ``batch_size`` once caught up
    backlog_batch_size: int = 2000
    checkpoint_every: int = 100  # entries
    checkpoint_interval: float = 10.0  # seconds
    poll_ms: int = 500
    stall_after: float = 30.0  # seconds behind the topics before readiness fails


class Parser:
    """Records into ledger entries, against the known contracts.

    A record is validated once: its raw bytes against one model per event type (the
    envelope with ``data`` typed by the type's contract), told apart by ``type``. Only a
    record that fails is taken apart again, envelope then type then payload, to name what
    is wrong as its dead letter says."""

    def __init__(
        self,
        contracts: Mapping[str, type[EventData]],
        study_id: str = DEFAULT_STUDY_ID,
        served: Sequence[str] = (),
    ) -> None:
        """``study_id``: the study whose records are this ledger's; ``served``: every study
        with a ledger here (the first study's parser dead-letters the records of others)."""
        self.contracts = contracts
        self._events = _typed_events(contracts) if contracts else None
        self.study_id = study_id
        self.served = frozenset((study_id, *served))
        self.first = study_id == DEFAULT_STUDY_ID  # keeps the dead letters no study claims

    def parse(self, record: ConsumerRecord[bytes, bytes]) -> NewEntry | str | None:
        """The record as a ledger entry, or the reason it cannot be one (a dead letter), or
        None: another study's record, not this ledger's."""
        if not self.first and not keyed_to(record.key, self.study_id):
            return None  # another study's by its key, unread (the first study's checks it)
        if record.value is None:
            return "empty record" if self.first else None
        if self._events is None:
            return self._parse_in_steps(record, record.value)
        try:
            event = self._events.validate_json(record.value)
        except ValueError:  # pydantic's ValidationError, invalid JSON included
            return self._parse_in_steps(record, record.value)
        if not self._ours(event):
            return self._elsewhere(event, record.key)
        if unstorable := unstorable_record(record.value):
            return unstorable
        return _entry(record, record.value, event, cast(EventData, event.data))

    def _ours(self, event: CloudEvent) -> bool:
        return (event.studyid or DEFAULT_STUDY_ID) == self.study_id

    def _elsewhere(self, event: CloudEvent, key: bytes | None) -> str | None:
        """Another study's record: None (its own ledger's), or, for the first study's
        parser, the dead letter of a record no ledger here takes: of a study no ledger
        here is for, or keyed otherwise than its study's records (its ledger's parser
        reads only those)."""
        if not self.first:
            return None
        if event.studyid not in self.served:
            return (f"study {event.studyid!r} is not served here (TL_STUDIES): "
                    "no ledger of this deployment is its")  # fmt: skip
        if not keyed_to(key, event.studyid):
            shown = "none" if key is None else repr(key.decode(errors="replace"))
            return (f"key {shown} is not study {event.studyid!r}'s (its studyid): "
                    f"that study's ledger reads only keys {event.studyid}/...")  # fmt: skip
        return None

    def _parse_in_steps(
        self, record: ConsumerRecord[bytes, bytes], value: bytes
    ) -> NewEntry | str | None:
        try:
            event = CloudEvent.from_kafka_value(value)
        except (ValidationError, ValueError) as error:
            if not self.first:  # of no study: the first study's ledger keeps it
                return None
            return f"not a CloudEvents 1.0 structured event: {_first_error(error)}"
        if not self._ours(event):
            return self._elsewhere(event, record.key)
        if unstorable := unstorable_record(value):
            return unstorable
        contract = self.contracts.get(event.type)
        if contract is None:
            return f"unknown event type {event.type!r}"
        try:
            data = contract.model_validate(event.data)
        except ValidationError as error:
            return f"payload does not match {event.type}: {_first_error(error)}"
        return _entry(record, value, event, data)


def keyed_to(key: bytes | None, study_id: str | None) -> bool:
    """Whether a Kafka key is one of ``study_id``'s records' keys (``study_key``): any key
    for the first study (its records keep their unprefixed keys), ``<study_id>/...`` for
    another. A study id holds no ``/``, so no study's prefix is another's."""
    prefix = study_key(study_id, "", DEFAULT_STUDY_ID)
    if not prefix:
        return True
    return key is not None and key.startswith(prefix)


def _typed_events(contracts: Mapping[str, type[EventData]]) -> TypeAdapter[CloudEvent]:
    """The envelope with its ``data`` typed by the contract, one model per event type, in
    one union told apart by ``type`` (pydantic picks the model from that field alone)."""
    models = []
    for event_type, contract in contracts.items():
        tag: Any = Literal[event_type]  # a type made at run time, one per event type
        models.append(
            create_model(
                f"{contract.__name__}Event",
                __base__=CloudEvent,
                type=(tag, ...),
                data=(contract, ...),
            )
        )
    union: Any = Annotated[Union[tuple(models)], Field(discriminator="type")]  # noqa: UP007
    return TypeAdapter[CloudEvent](union)


def _entry(
    record: ConsumerRecord[bytes, bytes], value: bytes, event: CloudEvent, data: EventData
) -> NewEntry | str:
    if data.event_id != event.id:
        return "envelope id and payload event_id differ"
    return NewEntry(
        event_id=event.id,
        source=event.source,
        event_type=event.type,
        subject_id=event.subject,
        record_id=data.record_id,
        record_version=data.version,
        occurred_at=event.time,
        recorded_at=event.recordedtime,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        payload=value,
    )


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(error)[:200]


class Parsed(NamedTuple):
    """A batch as the ledger takes it: entries, dead letters, next offset per partition,
    and how many records were other studies' (passed over)."""

    entries: list[NewEntry]
    dead: list[DeadLetter]
    offsets: dict[tuple[str, int], int]
    elsewhere: int = 0


class Follower:
    """Runs ``catch_up`` (the views' catch-up) beside the appends: told after each append
    that there is more, it catches up once for everything appended since it last began
    (a catch-up reads all entries after the views' position), so the appends never wait
    for the views, and the views never lag by more than one catch-up. Its first failure
    is kept and raised by ``check``; it does not try again until the next session."""

    def __init__(self, catch_up: Callable[[], Awaitable[object]]) -> None:
        self._catch_up = catch_up
        self._more = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._follow())

    def due(self) -> None:
        """Entries were appended: catch up (again, if a catch-up is running now)."""
        self._idle.clear()
        self._more.set()

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    async def caught_up(self) -> None:
        """Wait until every entry appended before this call is in the views."""
        await self._idle.wait()
        self.check()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _follow(self) -> None:
        while True:
            await self._more.wait()
            self._more.clear()
            try:
                await self._catch_up()
            except Exception as error:
                self._error = error
                self._idle.set()
                return
            if not self._more.is_set():
                self._idle.set()


class ForeignEntries(Exception):
    """The ledger holds rows this writer did not append: the session ends, and the next
    one's self-check looks at them."""


class Ingester:
    """Consumes the services' topics into the ledger and signs checkpoints."""

    def __init__(
        self,
        ledger: LedgerStore,
        bootstrap: str,
        topics: Sequence[str],
        contracts: Mapping[str, type[EventData]],
        checkpoint_key: Ed25519PrivateKey,
        options: IngestOptions | None = None,
        clock: Clock | None = None,
        on_appended: Callable[[], Awaitable[object]] | None = None,
        older_keys: Sequence[Ed25519PublicKey] = (),
        study_id: str = DEFAULT_STUDY_ID,
        served: Sequence[str] = (),
    ) -> None:
        """``checkpoint_key`` signs; ``older_keys`` are the public keys of keys rotated
        out, with which the self-check still verifies the checkpoints they signed;
        ``study_id``: the study whose ledger ``ledger`` is (its records alone are
        appended); ``served``: every study with a ledger here."""
        self.ledger = ledger
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.study_id = study_id
        self.group_id = group_id(study_id)
        self.parser = Parser(contracts, study_id, served)
        self.checkpoint_key = checkpoint_key
        self.verify_keys = [checkpoint_key.public_key(), *older_keys]
        self.options = options or IngestOptions()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_appended = on_appended
        self.frontier = Frontier()
        self._checkpointed = 0
        self._last_checkpoint = 0.0
        self.handled: Counter[str] = Counter()  # outcome -> records, since start
        self._kept_up_at = time.monotonic()  # last time this ingester had read everything
        self._last_error: str | None = None
        self.epoch: int | None = None  # the writer epoch this ingester appends under
        self._previous_epoch: int | None = None
        # why it will not sign (its self-check found what it cannot vouch for), if so
        self.untrusted: str | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Ingest until ``stopping`` is set. One ingester writes at a time (a second one
        waits as a standby); a database or broker failure restarts the session from the
        offsets and tree stored in the ledger."""
        backoff = 0.5
        while not stopping.is_set():
            try:
                async with self.ledger.writer_lock(stopping) as epoch:
                    if epoch is not None:
                        self.epoch = epoch
                        await self._session(stopping)
                backoff = 0.5
            except Exception as error:
                if self._last_error is None:
                    log.warning("ingest interrupted error=%r retrying every %.1fs or less",
                                error, backoff)  # fmt: skip
                self._last_error = f"{type(error).__name__}: {error}"[:300]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    async def _session(self, stopping: asyncio.Event) -> None:
        await self.take_over()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        # Three things overlap, each in order: the next batch is read and validated (CPU
        # work here) while the one before is appended (mostly a wait for PostgreSQL's
        # commit), and the views catch up (their own transactions, ``Follower``) while
        # later batches are appended. A failed append or catch-up ends the session; the
        # next one starts from the offsets stored with the ledger, so a batch read but not
        # appended is read again, and the views from their own stored position.
        views = Follower(self.on_appended) if self.on_appended else None
        step: asyncio.Task[None] | None = None
        try:
            await self._assign(consumer)
            size = self.options.batch_size
            while not stopping.is_set():
                batch = await consumer.getmany(timeout_ms=self.options.poll_ms, max_records=size)
                size = self._next_batch_size(batch, size)
                parsed = self.parse(batch) if batch else None
                if step is not None:
                    await step  # the batch before: appended, or its error raised here
                step = asyncio.create_task(self._step(consumer, batch, parsed, views))
            if step is not None:
                await step
            if views is not None:
                await views.caught_up()  # what this session appended is in the views
        finally:
            if step is not None and not step.done():
                step.cancel()
                with contextlib.suppress(BaseException):
                    await step
            if views is not None:
                await views.stop()
            await consumer.stop()

    def _next_batch_size(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]], size: int
    ) -> int:
        """A full batch means more records wait: the next batch may be larger."""
        full = sum(map(len, batch.values())) >= size
        larger = max(self.options.backlog_batch_size, self.options.batch_size)
        return larger if full else self.options.batch_size

    async def _step(
        self,
        consumer: AIOKafkaConsumer,
        batch: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]],
        parsed: Parsed | None,
        views: Follower | None,
    ) -> None:
        """A read batch appended (the views told to follow), its Kafka offsets committed,
        and any checkpoint due; with no batch, only the checkpoint."""
        if views is not None:
            views.check()  # a failed catch-up ends the session, as a failed append does
        if parsed is not None:
            if await self.append(parsed) and views is not None:
                views.due()
            await self._commit(consumer, batch)
        else:
            self._kept_up(time.monotonic())  # nothing more to read
        await self._maybe_checkpoint()

    async def ingest(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
    ) -> int:
        """Append one batch in one transaction; returns how many entries were new."""
        return await self.append(self.parse(batch))

    def parse(
        self, batch: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]
    ) -> Parsed:
        """A batch's entries, dead letters and next offset per partition (no I/O)."""
        entries: list[NewEntry] = []
        dead: list[DeadLetter] = []
        offsets: dict[tuple[str, int], int] = {}
        elsewhere = 0
        for partition, records in batch.items():
            for record in records:
                parsed = self.parser.parse(record)
                if parsed is None:
                    elsewhere += 1
                elif isinstance(parsed, str):
                    dead.append(DeadLetter(record.topic, record.partition, record.offset,
                                           record.key, record.value, parsed))  # fmt: skip
                    log.warning("dead letter topic=%s offset=%s reason=%s",
                                record.topic, record.offset, parsed)  # fmt: skip
                else:
                    entries.append(parsed)
                offsets[(partition.topic, partition.partition)] = record.offset + 1
        return Parsed(entries, dead, offsets, elsewhere)

    async def append(self, parsed: Parsed) -> int:
        """Append one parsed batch in one transaction; returns how many entries were new."""
        entries, dead, offsets, elsewhere = parsed
        tree = self.frontier.copy()  # this writer's only once the append has committed
        due: list[Checkpoint] = []

        def sign(appended: Sequence[tuple[int, bytes]]) -> list[Checkpoint]:
            due.extend(self._grow(tree, appended))
            return [] if self.untrusted is not None else due  # kept in the same transaction

        appended = await self.ledger.append(entries, dead, offsets, self._writer_epoch(), sign)
        self._kept_up(time.monotonic())
        self.handled.update(applied=len(entries), dead_letter=len(dead))
        if elsewhere:
            self.handled[OTHER_STUDY] += elsewhere
        self.frontier = tree
        if due:
            self._checkpointed = due[-1].size  # every N entries, also in a batch
            self._kept(due)
        return len(appended)

    def _grow(self, tree: Frontier, appended: Sequence[tuple[int, bytes]]) -> list[Checkpoint]:
        """Grow ``tree`` by the appended leaves; the checkpoints due every N entries."""
        due: list[Checkpoint] = []
        checkpointed = self._checkpointed
        for position, leaf in appended:
            if position != tree.size + 1:  # a row this ingester did not append
                raise ForeignEntries(
                    f"appended at {position}, but this writer's tree ends at "
                    f"{tree.size}: entries were written by someone else"
                )
            tree.append(leaf)
            if tree.size - checkpointed >= self.options.checkpoint_every:
                due.append(self._sign(tree.size, tree.root()))
                checkpointed = tree.size
        return due

    async def take_over(self) -> None:
        """The tree this session appends to: this ingester's own, kept from its last
        session when nobody wrote since (the epoch moved by one, the size is the same);
        otherwise rebuilt from the ledger after the self-check."""
        ours = self._previous_epoch is not None and self.epoch == self._previous_epoch + 1
        if not (ours and await self.ledger.size() == self.frontier.size):
            await self.self_check()
            await self._load_frontier()
        self._previous_epoch = self.epoch
        await self._sign_missed()

    async def self_check(self) -> None:
        """Before signing anything: every leaf recomputed from its bytes, every signed
        checkpoint checked, and every entry after the newest one checked against the Kafka
        record it names. Anything it cannot vouch for, it will not sign over."""
        # gaps between checkpoints are for verify to report, and for this writer to fill
        # (the entries in a gap are covered by the next checkpoint, or by Kafka)
        trust = Trust(self.verify_keys, self.ledger.origin)
        report = await check_ledger(self.ledger, trust, self.bootstrap)
        first = report.first
        if first is None:
            if self.untrusted is not None:
                log.warning("ledger self-check passes again: signing resumes")
            self.untrusted = None
            return
        reason = (f"self-check failed at position {first.position} ({first.kind}): "
                  f"{first.detail}; no checkpoint is signed until it is resolved")  # fmt: skip
        if reason != self.untrusted:
            log.error("ledger %s (docs/auditing.md, Self-check)", reason)
        self.untrusted = reason

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        """Consumer lag from the offsets stored with the ledger (the truth; Kafka's copy
        may trail), dead letters kept, and records handled since start."""
        ends = await kafka.end_offsets(self.topics)
        stored = {TopicPartition(t, p): o for (t, p), o in (await self.ledger.offsets()).items()}
        lag = lag_by_topic(ends, stored)
        dead = await self.ledger.pool.fetchval("SELECT count(*) FROM dead_letters")
        group = self.group_id
        return Readings(
            consumer_lag={(group, topic): lag.get(topic, 0) for topic in self.topics},
            dead_letters={group: int(dead)},
            consumed={(group, outcome): n for outcome, n in self.handled.items()},
            signing_refused={group: int(self.untrusted is not None)},
        )

    @property
    def check_name(self) -> str:
        """The readiness check of this ingester: ``ingest`` (the first study's ledger), or
        ``ingest:<study>``, so that ``/ready`` names the study whose ingest is at fault."""
        return "ingest" if self.study_id == DEFAULT_STUDY_ID else f"ingest:{self.study_id}"

    async def problems(self) -> dict[str, str]:
        """Readiness: ``{"ingest": reason}`` (``check_name``) while records wait on the
        topics and nothing has been appended for ``stall_after`` seconds (read from the
        offsets stored with the ledger, so a standby reports the active writer's state)."""
        try:
            return {self.check_name: await self._problem()}
        except Exception as error:  # this study's ledger unreadable: named, the others go on
            return {self.check_name: f"{type(error).__name__}: {error}"[:300]}

    async def _problem(self) -> str:
        async with KafkaOffsets(self.bootstrap) as kafka:
            ends = await kafka.end_offsets(self.topics)
        stored = {TopicPartition(t, p): o for (t, p), o in (await self.ledger.offsets()).items()}
        behind = {topic: n for topic, n in lag_by_topic(ends, stored).items() if n}
        now = time.monotonic()
        if self.untrusted is not None:
            return self.untrusted
        if not behind:
            self._kept_up(now)
            return "ok"
        waited = now - self._kept_up_at
        if waited <= self.options.stall_after:
            return "ok"
        topics = ", ".join(f"{topic} ({n})" for topic, n in sorted(behind.items()))
        error = f"; last error: {self._last_error}" if self._last_error else ""
        return (f"stalled: {sum(behind.values())} record(s) not in the ledger, on {topics}; "
                f"nothing appended for {waited:.0f}s{error}")  # fmt: skip

    def _kept_up(self, now: float) -> None:
        if self._last_error is not None:
            log.warning("ingest resumed after error=%s", self._last_error)
            self._last_error = None
        self._kept_up_at = now

    async def checkpoint(self) -> None:
        """Sign the current tree head if it grew since the last checkpoint (never while
        the self-check found something it cannot vouch for)."""
        if self.frontier.size == self._checkpointed or self.untrusted is not None:
            return
        checkpoint = self._sign(self.frontier.size, self.frontier.root())
        await self._keep([checkpoint])
        self._checkpointed = checkpoint.size

    def _sign(self, size: int, root: bytes) -> Checkpoint:
        return sign_checkpoint(self.checkpoint_key, self.ledger.origin, size, root, self.clock())

    async def _keep(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Store signed checkpoints (nothing while the self-check refuses signing)."""
        if not checkpoints or self.untrusted is not None:
            return
        await self.ledger.add_checkpoints(checkpoints, self._writer_epoch())
        self._kept(checkpoints)

    def _kept(self, checkpoints: Sequence[Checkpoint]) -> None:
        if self.untrusted is not None:
            return  # signed, but not kept
        self._last_checkpoint = asyncio.get_running_loop().time()
        last = checkpoints[-1]
        log.info("checkpoint signed size=%d root=%s count=%d", last.size, last.root.hex(),
                 len(checkpoints))  # fmt: skip

    async def _sign_missed(self) -> None:
        """Checkpoints every N entries up to the tree's size, where a crash between an
        append and its checkpoints left a longer gap (roots recomputed from the leaves)."""
        if self.untrusted is not None:
            return
        every = self.options.checkpoint_every
        sizes = range(self._checkpointed + every, self.frontier.size + 1, every)
        if not sizes:
            return
        leaves, tree, roots = await self.ledger.leaves_between(0, sizes[-1]), merkle.Frontier(), []
        for size in sizes:  # one pass over the leaves, a root at each size
            tree.extend(leaves[tree.size : size])
            roots.append(self._sign(size, tree.root()))
        await self._keep(roots)
        self._checkpointed = sizes[-1]

    def _writer_epoch(self) -> int:
        if self.epoch is None:
            raise RuntimeError("this ingester never took the ledger's writer lock")
        return self.epoch

    async def _maybe_checkpoint(self) -> None:
        grown = self.frontier.size - self._checkpointed
        waited = asyncio.get_running_loop().time() - self._last_checkpoint
        if grown >= self.options.checkpoint_every or (
            grown and waited >= self.options.checkpoint_interval
        ):
            await self.checkpoint()

    async def _load_frontier(self) -> None:
        self.frontier = Frontier()
        async for leaves in self.ledger.leaf_pages():
            self.frontier.extend(leaves)
        latest = await self.ledger.latest_checkpoint()
        self._checkpointed = latest.size if latest is not None else 0

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        known = await partitions_of(self.bootstrap, *self.topics)
        missing = [topic for topic in self.topics if topic not in known]
        if missing:
            raise RuntimeError(f"topics missing: {', '.join(missing)}")
        partitions = [TopicPartition(t, n) for t in self.topics for n in known[t]]
        consumer.assign(partitions)
        stored = await self.ledger.offsets()
        for partition in partitions:
            offset = stored.get((partition.topic, partition.partition))
            if offset is None:
                await consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, offset)

    async def _commit(
        self,
        consumer: AIOKafkaConsumer,
        batch: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        offsets = {
            tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()
        }
        try:
            await consumer.commit(offsets)
        except Exception as error:  # the database holds the truth; Kafka's copy is for lag
            log.warning("kafka offset commit failed error=%r", error)
