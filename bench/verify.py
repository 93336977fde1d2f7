"""Verification rate over a large ledger: the real verification against hashing once.

    python -m bench.verify [--entries 1000000]

N synthetic entries (~200-byte payloads, their real leaf hashes) are COPYed into a fresh
ledger, with one checkpoint over all of them signed by a fresh Ed25519 key (untimed).
Then:

- baseline: read (position, payload, leaf_hash) of every entry in position order,
  10,000 rows a query as ``stored_entries`` does, and SHA-256 each payload once;
- verify: ``ProjectionsApplication.verify_unattributed()`` (``stored_entries`` into a
  list, then ``verify_ledger``: every leaf recomputed, the Merkle root rebuilt, the
  checkpoint's signature and root checked);
- the two halves of verify apart: reading into ``StoredEntry`` objects, and
  ``verify_ledger`` alone in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import (
    LEDGER_COLUMNS,
    Measurement,
    entry_batches,
    main,
    on_fresh_ledger,
    progress,
    report,
    timed,
)
from services.projections.application import ProjectionsApplication
from services.projections.domain import StoredEntry, entry_leaf, sign_checkpoint, verify_ledger
from services.projections.ledger import LedgerStore
from services.projections.merkle import Frontier

CHUNK = 50_000
READ_BATCH = 10_000
WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def payload(position: int) -> bytes:
    """A synthetic event of about 200 bytes."""
    text = (
        f'{{"event_id":"{UUID(int=position)}","type":"Synthetic.v1","position":{position},'
        f'"note":"synthetic ledger entry for the verification benchmark"}}'
    )
    return text.ljust(200).encode()


def rows(start: int, stop: int, frontier: Frontier) -> Iterator[tuple[object, ...]]:
    """Entries ``start`` to ``stop - 1``; their leaves go into ``frontier`` in order."""
    for position in range(start, stop):
        data = payload(position)
        leaf = entry_leaf(position, data)
        frontier.append(leaf)
        yield (
            position, UUID(int=position), "/bench", "Synthetic.v1", None, UUID(int=position),
            1, WHEN, WHEN, "bench.synthetic", 0, position - 1, data, leaf,
        )  # fmt: skip


async def fill(ledger: LedgerStore, count: int, key: Ed25519PrivateKey) -> None:
    """COPY ``count`` entries in chunks, then sign one checkpoint over all of them."""
    frontier = Frontier()
    async with ledger.pool.acquire() as connection:
        for start in range(1, count + 1, CHUNK):
            chunk = list(rows(start, min(start + CHUNK, count + 1), frontier))
            await connection.copy_records_to_table(
                "ledger_entries", records=chunk, columns=LEDGER_COLUMNS, schema_name=ledger.schema
            )
    await ledger.add_checkpoints(
        [sign_checkpoint(key, ledger.origin, count, frontier.root(), WHEN)],
        await ledger.take_writer(),
    )


async def read_and_hash(pool: asyncpg.Pool) -> int:
    """The baseline: every entry read in position order, its payload hashed once."""
    hashed = 0
    async for rows in entry_batches(pool, "payload, leaf_hash", READ_BATCH):
        hashed += len([hashlib.sha256(r["payload"]).digest() for r in rows])
    return hashed


async def verify(application: ProjectionsApplication, count: int) -> None:
    result = await application.verify_unattributed()
    if not (result.ok and result.entries == count and result.latest_checkpoint == count):
        raise RuntimeError(f"verification failed: {result.to_json()}")


async def halves(
    ledger: LedgerStore, application: ProjectionsApplication, count: int
) -> list[Measurement]:
    """Reading into ``StoredEntry`` objects, and ``verify_ledger`` alone, timed apart."""
    entries: list[StoredEntry] = []

    async def read() -> None:
        entries.extend([e async for e in ledger.stored_entries()])

    async def check() -> None:
        verify_ledger(entries, await ledger.checkpoints(), application.trust)

    return [
        await timed("  of which: stored_entries() into a list", count, read),
        await timed("  of which: verify_ledger (in memory)", count, check),
    ]


async def measure(ledger: LedgerStore, key: Ed25519PrivateKey, count: int) -> list[Measurement]:
    application = ProjectionsApplication(ledger, [key.public_key()])
    base = await timed("baseline: read + sha256 once", count, lambda: read_and_hash(ledger.pool))
    real = await timed("verify_unattributed()", count, lambda: verify(application, count))
    return [base, real, *await halves(ledger, application, count)]


async def run(count: int) -> None:
    key = Ed25519PrivateKey.generate()
    progress(f"copying {count} synthetic entries")
    base, *others = await on_fresh_ledger(
        lambda ledger, _: fill(ledger, count, key), lambda ledger: measure(ledger, key, count)
    )
    report("verify", base, others)


if __name__ == "__main__":
    main(__doc__ or "", "--entries", 1_000_000, run)
