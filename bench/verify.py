"""Verification rate over a large ledger: the real verification against hashing once,
and the memory it takes.

    python -m bench.verify [--entries 1000000]

N synthetic entries (~200-byte payloads, their real leaf hashes) are COPYed into a fresh
ledger, with one checkpoint over all of them signed by a fresh Ed25519 key (untimed).
Then:

- baseline: read (position, payload, leaf_hash) of every entry in position order,
  10,000 rows a query (as ``entry_pages`` did until 2026-12-03: kept, so that ratios
  compare across runs), and SHA-256 each payload once; it and verify are taken in turn
  three times, and the fastest of each is reported;
- the same reading and hashing by binary COPY, as ``entry_pages`` now reads (best of
  three too): the least that reading and hashing once can take here;
- verify: ``ProjectionsApplication.verify_unattributed()`` (``LedgerVerification`` fed
  ``entry_pages`` as they are read: every leaf recomputed, the Merkle root rebuilt, the
  checkpoint's signature and root checked);
- the two halves of verify apart: reading the pages alone, and ``LedgerVerification``
  alone over pages held in memory;
- the peak RSS growth of verify at N / 10 and N entries (each a ledger of its own): a
  fresh process per size opens the ledger, notes its RSS (``VmRSS``), resets its peak
  (``/proc/self/clear_refs``), verifies, and reports the peak (``VmHWM``) less that RSS.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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
from services.projections.domain import EntryRow, LedgerVerification, entry_leaf, sign_checkpoint
from services.projections.ledger import CopyRows, LedgerStore
from services.projections.merkle import Frontier
from shared.kernel.settings import ServiceSettings

CHUNK = 50_000
READ_BATCH = 10_000
ROUNDS = 3
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


async def copy_and_hash(pool: asyncpg.Pool) -> int:
    """Every entry read by binary COPY, as ``entry_pages`` reads, its payload hashed once."""
    hashed = 0
    rows = CopyRows(READ_BATCH)

    async def sink(chunk: bytes) -> None:
        nonlocal hashed
        for page in rows.feed(chunk):
            hashed += len([hashlib.sha256(r[1]).digest() for r in page])

    async with pool.acquire() as connection:
        await connection.copy_from_query(
            "SELECT position, payload, leaf_hash FROM ledger_entries ORDER BY position",
            output=sink,
            format="binary",
        )
    return hashed + len([hashlib.sha256(r[1]).digest() for r in rows.finish()])


async def verify(application: ProjectionsApplication, count: int) -> None:
    result = await application.verify_unattributed()
    if not (result.ok and result.entries == count and result.latest_checkpoint == count):
        raise RuntimeError(f"verification failed: {result.to_json()}")


async def halves(
    ledger: LedgerStore, application: ProjectionsApplication, count: int
) -> list[Measurement]:
    """Reading the pages, and ``LedgerVerification`` over pages held in memory, apart."""
    pages: list[Sequence[EntryRow]] = []

    async def read() -> None:
        pages.extend([page async for page in ledger.entry_pages()])

    async def check() -> None:
        verification = LedgerVerification(await ledger.checkpoints(), application.trust)
        for page in pages:
            verification.add(page)
        if not verification.finish().ok:
            raise RuntimeError("verification failed")

    return [
        await timed("  of which: entry_pages() alone", count, read),
        await timed("  of which: LedgerVerification (in memory)", count, check),
    ]


async def measure(ledger: LedgerStore, key: Ed25519PrivateKey, count: int) -> list[Measurement]:
    """The baseline and verify, taken in turn ``ROUNDS`` times, the fastest of each: on a
    shared machine a burst of someone else's load then falls on one round, not on one of
    the two figures the ratio compares."""
    application = ProjectionsApplication(ledger, [key.public_key()])
    bases, copies, reals = [], [], []
    for _ in range(ROUNDS):
        bases.append(await timed(f"baseline: read + sha256 once (best of {ROUNDS})", count,
                                 lambda: read_and_hash(ledger.pool)))  # fmt: skip
        copies.append(await timed(f"read by COPY + sha256 once (best of {ROUNDS})", count,
                                  lambda: copy_and_hash(ledger.pool)))  # fmt: skip
        reals.append(await timed(f"verify_unattributed() (best of {ROUNDS})", count,
                                 lambda: verify(application, count)))  # fmt: skip
    fastest = [min(ms, key=lambda m: m.seconds) for ms in (bases, reals, copies)]
    return [*fastest, *await halves(ledger, application, count)]


Growth = tuple[int, int, float, float]  # RSS before (kB), peak growth (kB), CPU s, wall s


def verify_growth(schema: str, public_key: bytes, count: int) -> Growth:
    """In a fresh process: its RSS (kB) once the ledger in ``schema`` is opened, how much
    its peak RSS grows above that while the ledger is verified, and the CPU time this
    process used for it beside the wall-clock time (CPU time moves less with the load of
    a shared machine: the database's own CPU is not in it)."""
    key = Ed25519PublicKey.from_public_bytes(public_key)
    return asyncio.run(_verify_growth(schema, key, count))


async def _verify_growth(schema: str, key: Ed25519PublicKey, count: int) -> Growth:
    env = {**os.environ, "TL_PROJECTIONS_DATABASE_SCHEMA": schema}
    ledger = LedgerStore(ServiceSettings.from_env("projections", env).database)
    await ledger.open()
    try:
        before = _peak_reset()
        cpu, wall = time.process_time(), time.perf_counter()
        await verify(ProjectionsApplication(ledger, [key]), count)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return before, _memory("VmHWM") - before, cpu, wall
    finally:
        await ledger.close()


def _peak_reset() -> int:
    """This process's RSS now (kB), its peak (``VmHWM``) reset to it (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _memory("VmRSS")


def _memory(field: str) -> int:
    """A memory figure of this process, in kB, from /proc/self/status (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


async def peak_growth(ledger: LedgerStore, key: Ed25519PrivateKey, count: int) -> Growth:
    """``verify_growth`` of ``ledger``, in a process of its own (spawned: nothing of this
    one's memory is inherited)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, verify_growth, ledger.schema, raw, count
        )


async def measure_all(
    ledger: LedgerStore, key: Ed25519PrivateKey, count: int
) -> tuple[list[Measurement], Growth]:
    return await measure(ledger, key, count), await peak_growth(ledger, key, count)


async def growth_at(key: Ed25519PrivateKey, count: int) -> Growth:
    """The peak RSS growth of verify over a fresh ledger of ``count`` entries."""
    progress(f"copying {count} synthetic entries")
    return await on_fresh_ledger(
        lambda ledger, _: fill(ledger, count, key), lambda ledger: peak_growth(ledger, key, count)
    )


def load() -> str:
    """The load averages (1, 5, 15 minutes), as ``uptime`` prints them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


async def run(count: int) -> None:
    print(f"verify    load average at the start: {load()}", flush=True)
    key = Ed25519PrivateKey.generate()
    smaller = await growth_at(key, count // 10)
    progress(f"copying {count} synthetic entries")
    (base, *others), growth = await on_fresh_ledger(
        lambda ledger, _: fill(ledger, count, key), lambda ledger: measure_all(ledger, key, count)
    )
    report("verify", base, others)
    for size, (before, grown, cpu, wall) in ((count // 10, smaller), (count, growth)):
        print(f"verify    verify_unattributed() at {size} entries, in a fresh process: peak "
              f"RSS {grown / 1024:.1f} MB above the {before / 1024:.1f} MB before it; "
              f"{cpu:.3f} s of its CPU in {wall:.3f} s")  # fmt: skip
    print(f"verify    load average at the end: {load()}")


if __name__ == "__main__":
    main(__doc__ or "", "--entries", 1_000_000, run)
