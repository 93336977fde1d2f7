"""The ledger in PostgreSQL: append-only tables, written as ``ledger_writer``.

- ``ledger_entries``: one row per event, totally ordered by ``position`` (1, 2, 3 ...,
  assigned by the single ingester inside its transaction, never by a sequence, so that
  positions have no gaps and commit in order), the event exactly as published, and its
  RFC 6962 leaf hash. Unique by ``event_id``: a redelivered event is not appended twice.
- ``checkpoints``: signed statements that the first ``size`` entries have this root: C2SP
  checkpoints (signed notes naming the ledger's origin), and older ones of the first scheme.
- ``ledger_origin``: the ledger's origin (one row, written once): the first line of its
  checkpoints, unique per deployment.
- ``cosignatures``: a witness's cosignature lines (c2sp.org/tlog-cosignature) over a
  checkpoint, as the witness returned them; a cosigned checkpoint is the checkpoint's note
  with these lines appended (``services.projections.witness``).
- ``dead_letters``: records that could not be appended, with the reason.
- ``ingest_offsets``: the next Kafka offset per partition, written in the same
  transaction as the entries, so that a crash can neither lose nor double an event.
- ``ledger_writer``: one row, the writer's epoch. A writer takes the session advisory
  lock, then advances the epoch; every append and every checkpoint checks, in its own
  transaction, that the epoch is still its own. A writer that lost its lock (its
  connection ended by a timeout, a proxy or a network cut) cannot commit again: the
  standby that took over advanced the epoch first (a fence).

Triggers refuse UPDATE, DELETE and TRUNCATE on the first four, and the writing role was
never granted those privileges.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.projections.anchoring import TailEntry
from services.projections.domain import Checkpoint, EntryRow, entry_leaf
from services.projections.views import ViewStore
from shared.adapters.pools import PooledStore
from shared.kernel.errors import Damaged
from shared.kernel.settings import DatabaseSettings, SettingsError

log = logging.getLogger(__name__)
WRITER_ROLE = "ledger_writer"
APPEND_ONLY = (
    "ledger_entries",
    "checkpoints",
    "dead_letters",
    "auditor_activity",
    "ledger_origin",
    "cosignatures",
)

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS ledger_entries (
    position bigint PRIMARY KEY CHECK (position > 0),
    event_id uuid NOT NULL UNIQUE,
    source text NOT NULL,
    event_type text NOT NULL,
    subject_id text,
    record_id uuid NOT NULL,
    record_version integer NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    payload bytea NOT NULL,
    leaf_hash bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_entries_subject ON ledger_entries (subject_id, position);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size bigint PRIMARY KEY,
    root bytea NOT NULL,
    signed_at timestamptz NOT NULL,
    key_id text NOT NULL,
    signature bytea NOT NULL
);
-- the C2SP signed note (NULL: a checkpoint of the first scheme, before notes)
ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS note text;
CREATE TABLE IF NOT EXISTS ledger_origin (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    origin text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cosignatures (
    tree_size bigint NOT NULL,
    witness text NOT NULL,  -- the witness's key name and hex key ID (its vkey's prefix)
    line text NOT NULL,  -- the signature line, as the witness returned it
    note text NOT NULL,  -- the cosigned checkpoint: kept whole, so that it stands alone
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tree_size, witness)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    record_key bytea,
    record_value bytea,
    reason text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ingest_offsets (
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, kafka_partition)
);
CREATE TABLE IF NOT EXISTS ledger_writer (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch bigint NOT NULL,
    holder text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ledger_writer (only_row, epoch, holder) VALUES (true, 0, '') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS auditor_activity (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    user_id text NOT NULL,
    printed_name text NOT NULL,
    role text NOT NULL,
    action text NOT NULL,
    parameters jsonb NOT NULL,
    outcome text NOT NULL
);
CREATE OR REPLACE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


# the checkpoints to keep with an append, signed over its (position, leaf) pairs
Signer = Callable[[Sequence[tuple[int, bytes]]], Sequence[Checkpoint]]


@dataclass(frozen=True)
class NewEntry:
    """An event to append (its position and leaf are assigned on append)."""

    event_id: UUID
    source: str
    event_type: str
    subject_id: str | None
    record_id: UUID
    record_version: int
    occurred_at: datetime
    recorded_at: datetime
    topic: str
    partition: int
    offset: int
    payload: bytes


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


class LedgerStore(PooledStore):
    """The projections service's tables, in its own database and schema."""

    def __init__(
        self, database: DatabaseSettings, origin: str | None = None, study_id: str | None = None
    ) -> None:
        """``origin``: the ledger's origin (``TL_LEDGER_ORIGIN``) for a new ledger; one is
        made (``trial-ledger.local/ledger/<random>``) when none is given. An existing
        ledger keeps its own, and refuses to start under another.

        ``study_id``: the study whose ledger this is, when it is not the deployment's first
        (``services.projections.studies``): its schema is made if missing, and its origin,
        given or made, ends in ``/<study_id>``, so that its checkpoints name the study."""
        self.database = database
        self.schema = database.schema
        self.study_id = study_id
        self.wanted_origin = None if origin is None else self._named(origin)
        self.origin = ""
        self._pool: asyncpg.Pool | None = None

    def _named(self, origin: str) -> str:
        """``origin`` naming this ledger's study: ``<origin>/<study>`` (the first study's,
        as it is)."""
        return origin if self.study_id is None else f"{origin}/{self.study_id}"

    async def open(self) -> None:
        """Create the tables (as their owner), then work as ``ledger_writer``."""
        connection = await asyncpg.connect(self.database.dsn)
        try:
            await self._migrate(connection)
        finally:
            await connection.close()
        # startup settings, so that the pool's RESET ALL on release keeps them
        self._pool = await asyncpg.create_pool(
            self.database.dsn,
            min_size=1,
            max_size=6,
            server_settings={"role": WRITER_ROLE, "search_path": f'"{self.schema}"'},
        )

    async def _migrate(self, connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            if self.study_id is not None:  # the first study's schema is the deployment's
                await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await connection.execute(f'SET LOCAL search_path TO "{self.schema}"')
            await connection.execute(SCHEMA_SQL)
            for table in APPEND_ONLY:
                for name, timing in ((f"{table}_no_change", "UPDATE OR DELETE"),):
                    await connection.execute(
                        f"DROP TRIGGER IF EXISTS {name} ON {table}; "
                        f"CREATE TRIGGER {name} BEFORE {timing} ON {table} "
                        "FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change()"
                    )
                await connection.execute(
                    f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}; "
                    f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change()"
                )
                await connection.execute(
                    f"REVOKE ALL ON {table} FROM {WRITER_ROLE}; "
                    f"GRANT SELECT, INSERT ON {table} TO {WRITER_ROLE}"
                )
            await ViewStore.migrate(connection, self.schema, WRITER_ROLE)
            self.origin = await self._origin(connection)
            await connection.execute(
                f'GRANT USAGE ON SCHEMA "{self.schema}" TO {WRITER_ROLE}; '
                f"GRANT SELECT, INSERT, UPDATE ON ingest_offsets TO {WRITER_ROLE}; "
                f"GRANT SELECT, UPDATE ON ledger_writer TO {WRITER_ROLE}; "
                f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{self.schema}" TO {WRITER_ROLE}'
            )

    async def _origin(self, connection: asyncpg.Connection) -> str:
        random = f"trial-ledger.local/ledger/{secrets.token_hex(8)}"
        made = self.wanted_origin or self._named(random)
        if any(c.isspace() or c == "+" for c in made):
            raise SettingsError(f"TL_LEDGER_ORIGIN {made!r} has a space or a '+'")
        await connection.execute(
            "INSERT INTO ledger_origin (origin) VALUES ($1) ON CONFLICT DO NOTHING", made
        )
        origin = str(await connection.fetchval("SELECT origin FROM ledger_origin"))
        if self.wanted_origin and origin != self.wanted_origin:
            raise SettingsError(
                f"TL_LEDGER_ORIGIN is {self.wanted_origin!r}, but this ledger's origin is "
                f"{origin!r} (it never changes: its checkpoints name it)"
            )
        return origin

    # --- writing -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def writer_lock(self, stopping: asyncio.Event) -> AsyncIterator[int | None]:
        """Hold the ledger's single-writer lock (a session advisory lock) while inside,
        and yield this writer's epoch: the fence every append and checkpoint checks.

        Yields None if ``stopping`` was set while waiting for another writer to go.
        """
        async with self.pool.acquire() as connection:
            key = f"ledger-writer:{self.schema}"
            while not await connection.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", key
            ):
                log.debug("ingest standing by: another ingester writes the ledger")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 1.0)
                if stopping.is_set():
                    yield None
                    return
            try:
                # waits for an append of the previous writer still in flight (it holds the
                # row), so that this writer's view of the ledger starts after it
                epoch = await connection.fetchval(
                    "UPDATE ledger_writer SET epoch = epoch + 1, holder = $1, since = now() "
                    "RETURNING epoch",
                    _HOLDER,
                )
                log.info("ingest writes the ledger epoch=%d holder=%s", epoch, _HOLDER)
                yield int(epoch)
            finally:
                with contextlib.suppress(Exception):  # a lost connection released it already
                    await connection.execute(
                        "SELECT pg_advisory_unlock(hashtextextended($1, 0))", key
                    )

    async def take_writer(self) -> int:
        """Advance the writer epoch without the session lock, for a tool that owns the
        ledger alone (a benchmark filling it, a test); any running writer is fenced off."""
        epoch = await self.pool.fetchval(
            "UPDATE ledger_writer SET epoch = epoch + 1, holder = $1, since = now() "
            "RETURNING epoch",
            f"{_HOLDER} (tool)",
        )
        return int(epoch)

    async def append(
        self,
        entries: Sequence[NewEntry],
        dead_letters: Sequence[DeadLetter],
        next_offsets: dict[tuple[str, int], int],
        epoch: int,
        sign: Signer = lambda appended: (),
    ) -> list[tuple[int, bytes]]:
        """Append new events (skipping known event ids), dead letters, offsets and the
        checkpoints ``sign`` makes over the appended (position, leaf) pairs, atomically, as
        the writer of ``epoch`` (``Fenced`` if another writer has taken over since).

        Returns the (position, leaf) of each appended entry, in order.
        """
        async with self.pool.acquire() as connection, connection.transaction():
            # one writer at a time, and only the current one: positions are max + 1,
            # without gaps (a row lock, as LOCK TABLE needs privileges the writer lacks)
            # The fence, the last position and the batch's known ids, in one round trip.
            # The two reads see the statement's snapshot, taken before the row lock is
            # granted, yet they miss no entry when the epoch read is this writer's: every
            # append of an earlier writer committed before this writer's epoch did (its
            # UPDATE waits for their row lock), and a later writer would have moved the
            # epoch (the lock re-reads the newest row: READ COMMITTED, FOR UPDATE).
            current, position, known_ids = await connection.fetchrow(
                "SELECT (SELECT epoch FROM ledger_writer FOR UPDATE), "
                "(SELECT coalesce(max(position), 0) FROM ledger_entries), "
                "ARRAY(SELECT event_id FROM ledger_entries WHERE event_id = ANY($1::uuid[]))",
                [e.event_id for e in entries],
            )
            _check_epoch(current, epoch)
            known = set(known_ids)
            appended: list[tuple[int, bytes]] = []
            rows = []
            for entry in entries:
                if entry.event_id in known:
                    continue  # a redelivery: the ledger already has it
                known.add(entry.event_id)
                position += 1
                leaf = entry_leaf(position, entry.payload)
                appended.append((position, leaf))
                rows.append(_row(position, entry, leaf))
            if rows:
                await connection.copy_records_to_table(
                    "ledger_entries", records=rows, columns=_COLUMNS, schema_name=self.schema
                )
            if dead_letters:
                await connection.executemany(
                    "INSERT INTO dead_letters (topic, kafka_partition, kafka_offset, record_key, "
                    "record_value, reason) VALUES ($1, $2, $3, $4, $5, $6)",
                    [
                        (d.topic, d.partition, d.offset, d.key, d.value, d.reason)
                        for d in dead_letters
                    ],
                )
            await connection.executemany(
                "INSERT INTO ingest_offsets (topic, kafka_partition, next_offset) "
                "VALUES ($1, $2, $3) ON CONFLICT (topic, kafka_partition) "
                "DO UPDATE SET next_offset = EXCLUDED.next_offset",
                [(topic, partition, offset) for (topic, partition), offset in next_offsets.items()],
            )
            await _insert_checkpoints(connection, sign(appended))
            return appended

    async def add_checkpoints(self, checkpoints: Sequence[Checkpoint], epoch: int) -> None:
        """Keep signed checkpoints, as the writer of ``epoch`` (``Fenced`` otherwise)."""
        async with self.pool.acquire() as connection, connection.transaction():
            await _fence(connection, epoch)
            await _insert_checkpoints(connection, checkpoints)

    async def add_cosignature(self, size: int, witness: str, line: str, note: str) -> None:
        """Keep a witness's cosignature line of the checkpoint at ``size`` (the first one
        kept per witness and size: a witness cosigns a size once per request, and any of
        its lines proves the same thing), with the whole cosigned ``note``: it verifies
        without the checkpoints table, from which a checkpoint may be deleted. No writer
        fence: a cosignature is the witness's statement, whichever process asked for it."""
        await self.pool.execute(
            "INSERT INTO cosignatures (tree_size, witness, line, note) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            size, witness, line, note,
        )  # fmt: skip

    async def cosigned_notes(self) -> list[str]:
        """Every kept cosigned checkpoint (the note, the log's and the witness's lines)."""
        rows = await self.pool.fetch("SELECT note FROM cosignatures ORDER BY tree_size")
        return [str(r["note"]) for r in rows]

    async def latest_checkpoint(self) -> Checkpoint | None:
        """The signed checkpoint of the largest size (None: none yet)."""
        row = await self.pool.fetchrow(
            "SELECT tree_size, root, signed_at, key_id, signature, note FROM checkpoints "
            "ORDER BY tree_size DESC LIMIT 1"
        )
        return None if row is None else _checkpoint(row)

    async def newest_cosigned(self) -> int:
        """The largest checkpoint size with a kept cosignature (0: none)."""
        return int(await self.pool.fetchval("SELECT coalesce(max(tree_size), 0) FROM cosignatures"))

    async def newest_noted(self) -> int:
        """The largest checkpoint size signed as a C2SP note (0: none)."""
        return int(await self.pool.fetchval(
            "SELECT coalesce(max(tree_size), 0) FROM checkpoints WHERE note IS NOT NULL"
        ))  # fmt: skip

    async def cosignatures(self, sizes: Sequence[int] | None = None) -> dict[int, list[str]]:
        """Every kept cosignature line (or those of checkpoints of ``sizes``), by size."""
        rows = await self.pool.fetch(
            "SELECT tree_size, line FROM cosignatures "
            "WHERE $1::bigint[] IS NULL OR tree_size = ANY($1::bigint[]) "
            "ORDER BY tree_size, witness",
            None if sizes is None else list(sizes),
        )
        found: dict[int, list[str]] = {}
        for r in rows:
            found.setdefault(int(r["tree_size"]), []).append(str(r["line"]))
        return found

    # --- reading -------------------------------------------------------------------------

    async def offsets(self) -> dict[tuple[str, int], int]:
        rows = await self.pool.fetch(
            "SELECT topic, kafka_partition, next_offset FROM ingest_offsets"
        )
        return {(r["topic"], r["kafka_partition"]): r["next_offset"] for r in rows}

    async def size(self) -> int:
        return int(
            await self.pool.fetchval("SELECT coalesce(max(position), 0) FROM ledger_entries")
        )

    async def leaf_pages(self, batch: int = 100_000) -> AsyncGenerator[list[bytes], None]:
        """Every leaf hash in position order, ``batch`` a page (an ingester's start holds
        one page, not the whole ledger's)."""
        after = 0
        while rows := await self.pool.fetch(
            "SELECT position, leaf_hash FROM ledger_entries WHERE position > $1 "
            "ORDER BY position LIMIT $2",
            after,
            batch,
        ):
            yield [bytes(r["leaf_hash"]) for r in rows]
            after = rows[-1]["position"]

    async def leaves_between(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes of the tree's leaves ``start`` to ``end - 1`` (positions
        ``start + 1`` to ``end``); ``LedgerGap`` unless the ledger holds all of them."""
        rows = await self.pool.fetch(
            "SELECT leaf_hash FROM ledger_entries WHERE position > $1 AND position <= $2 "
            "ORDER BY position",
            start,
            end,
        )
        if len(rows) != end - start:
            raise LedgerGap(
                f"the ledger holds {len(rows)} of its entries {start + 1}..{end}: entries "
                "are missing (docs/auditing.md, verify)",
                first=start + 1, last=end, held=len(rows),
            )  # fmt: skip
        return [bytes(r["leaf_hash"]) for r in rows]

    async def checkpoints(self, after: int = 0, limit: int | None = None) -> list[Checkpoint]:
        """The signed checkpoints of sizes above ``after``, oldest first (at most
        ``limit``)."""
        rows = await self.pool.fetch(
            "SELECT tree_size, root, signed_at, key_id, signature, note FROM checkpoints "
            "WHERE tree_size > $1 ORDER BY tree_size LIMIT $2",
            after,
            limit,
        )
        return [_checkpoint(r) for r in rows]

    async def entry_pages(
        self, batch: int = 10_000, span: int = 250_000
    ) -> AsyncGenerator[Sequence[EntryRow], None]:
        """Every entry's position, payload and leaf hash, in position order, ``batch`` a
        page (for verification, which holds one page at a time).

        The entries stream in binary ``COPY``, ``span`` entries a statement, each after the
        last position of the one before (no snapshot is held for the whole of a large
        ledger), and are cut into pages of plain tuples as the bytes arrive. PostgreSQL
        streams on while the caller checks a page (its socket's buffers, then two pages,
        wait), instead of waiting for one query per page; no record is decoded per row."""
        pages: asyncio.Queue[Sequence[EntryRow] | Exception | None] = asyncio.Queue(2)

        async def read() -> None:
            try:
                await self._copy_entries(pages.put, batch, span)
            except Exception as error:  # handed to the caller, which raises it
                await pages.put(error)
            else:
                await pages.put(None)

        reader = asyncio.create_task(read())
        try:
            while (page := await pages.get()) is not None:
                if isinstance(page, Exception):
                    raise page
                yield page
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _copy_entries(
        self, put: Callable[[Sequence[EntryRow]], Awaitable[None]], batch: int, span: int
    ) -> None:
        """``entry_pages``' reading: one COPY after another until one is short."""
        after = 0
        async with self.pool.acquire() as connection:
            while True:
                rows = CopyRows(batch)

                async def sink(chunk: bytes, rows: CopyRows = rows) -> None:
                    for page in rows.feed(chunk):
                        await put(page)

                await connection.copy_from_query(
                    "SELECT position, payload, leaf_hash FROM ledger_entries "
                    "WHERE position > $1 ORDER BY position LIMIT $2",
                    after,
                    span,
                    output=sink,
                    format="binary",
                )
                if last := rows.finish():
                    await put(last)
                if rows.count < span:
                    return
                after = rows.last_position

    async def tail_entries(self, after: int) -> list[TailEntry]:
        """The entries after position ``after``, with the Kafka records they name."""
        rows = await self.pool.fetch(
            "SELECT position, topic, kafka_partition, kafka_offset, payload FROM ledger_entries "
            "WHERE position > $1 ORDER BY position",
            after,
        )
        return [TailEntry(r["position"], r["topic"], r["kafka_partition"], r["kafka_offset"],
                          bytes(r["payload"])) for r in rows]  # fmt: skip

    async def record_activity(
        self,
        user_id: str,
        printed_name: str,
        role: str,
        action: str,
        parameters: dict[str, object],
        outcome: str,
    ) -> None:
        """Record an auditor's query or export, or a refused one (Part 11 §11.10(e))."""
        await self.pool.execute(
            "INSERT INTO auditor_activity (user_id, printed_name, role, action, parameters, "
            "outcome) VALUES ($1, $2, $3, $4, $5, $6)",
            user_id, printed_name, role, action, json.dumps(parameters, default=str), outcome,
        )  # fmt: skip

    async def dead_letters(self) -> list[asyncpg.Record]:
        return list(await self.pool.fetch("SELECT * FROM dead_letters ORDER BY id"))


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(row["tree_size"], bytes(row["root"]), row["signed_at"], row["key_id"],
                      bytes(row["signature"]), row["note"])  # fmt: skip


class Fenced(Exception):
    """Another writer took the ledger over: this one must not write again."""


class LedgerGap(Damaged):
    """Entries the ledger had are not there: it was changed behind the writer's back."""


async def _fence(connection: asyncpg.Connection, epoch: int) -> None:
    """Inside a transaction: lock the writer row, and refuse unless ``epoch`` is current."""
    _check_epoch(await connection.fetchval("SELECT epoch FROM ledger_writer FOR UPDATE"), epoch)


def _check_epoch(current: int, epoch: int) -> None:
    if current != epoch:
        raise Fenced(f"the ledger's writer epoch is {current}, not this writer's {epoch}")


async def _insert_checkpoints(
    connection: asyncpg.Connection, checkpoints: Sequence[Checkpoint]
) -> None:
    if checkpoints:
        await connection.executemany(
            "INSERT INTO checkpoints (tree_size, root, signed_at, key_id, signature, note) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tree_size) DO NOTHING",
            [(c.size, c.root, c.signed_at, c.key_id, c.signature, c.note) for c in checkpoints],
        )


_HOLDER = f"{socket.gethostname()}:{os.getpid()}"
_COLUMNS = (
    "position",
    "event_id",
    "source",
    "event_type",
    "subject_id",
    "record_id",
    "record_version",
    "occurred_at",
    "recorded_at",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "payload",
    "leaf_hash",
)


def _row(position: int, e: NewEntry, leaf: bytes) -> tuple[object, ...]:
    return (
        position,
        e.event_id,
        e.source,
        e.event_type,
        e.subject_id,
        e.record_id,
        e.record_version,
        e.occurred_at,
        e.recorded_at,
        e.topic,
        e.partition,
        e.offset,
        e.payload,
        leaf,
    )


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = struct.Struct(">11sii")  # signature, flags, header extension's length
_COPY_TRAILER = b"\xff\xff"  # a field count of -1
_ROW_START = struct.Struct(">hiqi")  # field count (3), 8, position (bigint), payload length
_LEAF = struct.Struct(">i32s")  # length, leaf hash (32 bytes, unless someone changed it)
_LENGTH = struct.Struct(">i")


class CopyRows:
    """Rows of ``(position, payload, leaf_hash)`` read from PostgreSQL's binary COPY
    format (PostgreSQL's documentation of COPY, "Binary Format"), fed the bytes as they
    arrive and cut into pages of ``batch``; a row split between two chunks waits for the
    next. A stored leaf of another length than 32 bytes is read as it is (verification
    then finds it altered)."""

    def __init__(self, batch: int) -> None:
        self.count = 0  # the rows in the pages handed out
        self.last_position = 0
        self._batch = batch
        self._page: list[EntryRow] = []
        self._rest = b""
        self._header = True

    def feed(self, chunk: bytes) -> Iterator[list[EntryRow]]:
        """The pages completed by ``chunk``, the next bytes of the COPY."""
        data = self._rest + chunk if self._rest else chunk
        offset = self._skip_header(data) if self._header else 0
        if offset < 0:
            self._rest = data
            return
        end, page, batch = len(data), self._page, self._batch
        append, start, tail = page.append, _ROW_START.unpack_from, _LEAF.unpack_from
        while offset + 18 <= end:
            fields, _, position, size = start(data, offset)
            if fields != 3 or size < 0:  # every column is NOT NULL: no length is -1
                raise ValueError(f"a COPY row of {fields} fields, payload length {size}")
            payload_end = offset + 18 + size
            stop = payload_end + 36
            if stop <= end:
                leaf_size, leaf = tail(data, payload_end)
            else:
                leaf_size = -1
            if leaf_size != 32:  # the row's end is not here yet, or its leaf is odd
                if payload_end + 4 > end:
                    break
                (leaf_size,) = _LENGTH.unpack_from(data, payload_end)
                stop = payload_end + 4 + max(leaf_size, 0)
                if stop > end:
                    break
                leaf = data[payload_end + 4 : stop]
            append((position, data[offset + 18 : payload_end], leaf))
            offset = stop
            if len(page) == batch:
                self._handed(page)
                yield page
                page = self._page = []
                append = page.append
        self._rest = data[offset:]

    def finish(self) -> list[EntryRow]:
        """The last page (perhaps short, or empty), once the COPY has ended."""
        if self._rest != _COPY_TRAILER and not (self._header and not self._rest):
            raise ValueError(f"the COPY ended inside a row ({len(self._rest)} bytes left)")
        page, self._page = self._page, []
        self._handed(page)
        return page

    def _handed(self, page: list[EntryRow]) -> None:
        if page:
            self.count += len(page)
            self.last_position = page[-1][0]

    def _skip_header(self, data: bytes) -> int:
        """Where the rows start, after the header (-1: the header is not all here yet)."""
        if len(data) < _COPY_HEADER.size:
            return -1
        signature, _, extension = _COPY_HEADER.unpack_from(data)
        extension = int(extension)
        if signature != _COPY_SIGNATURE:
            raise ValueError("not a binary COPY stream")
        if len(data) < _COPY_HEADER.size + extension:
            return -1
        self._header = False
        return _COPY_HEADER.size + extension
