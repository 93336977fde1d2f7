"""View rebuild rate: ``ViewStore.rebuild`` against reading and decoding the same payloads.

    python -m bench.rebuild [--entries 20000]

N enrollment events are appended to a fresh ledger with ``LedgerStore.append`` (in large
batches, untimed), then:

- baseline: read the N payloads from ``ledger_entries`` in position order, 1,000 rows a
  query as the views do, and ``json.loads`` each (the part no rebuild can avoid);
- rebuild (empty views): ``ViewStore.rebuild()`` on views never built (a first build);
- rebuild (built views): ``ViewStore.rebuild()`` again, which first deletes every row.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import asyncpg

from bench.common import Measurement, entry_batches, main, on_fresh_ledger, progress, report, timed
from bench.events import enrollment_events, new_entry
from services.projections.ledger import LedgerStore
from services.projections.views import ViewStore
from shared.clinical import STUDY  # the first study's calendar: these ledgers are its
from shared.kernel.envelope import CloudEvent

FILL_BATCH = 5_000
READ_BATCH = 1_000


async def fill(ledger: LedgerStore, events: list[CloudEvent], topic: str) -> None:
    epoch = await ledger.take_writer()
    entries = [new_entry(e, topic, 0, offset) for offset, e in enumerate(events)]
    for start in range(0, len(entries), FILL_BATCH):
        chunk = entries[start : start + FILL_BATCH]
        await ledger.append(chunk, [], {(topic, 0): chunk[-1].offset + 1}, epoch)


async def read_and_decode(pool: asyncpg.Pool) -> int:
    """The baseline: every payload read in position order and decoded as JSON."""
    decoded = 0
    async for rows in entry_batches(pool, "payload", READ_BATCH):
        decoded += len([json.loads(r["payload"]) for r in rows])
    return decoded


async def measure(ledger: LedgerStore, count: int) -> tuple[Measurement, list[Measurement]]:
    views = ViewStore(ledger.pool, ledger.schema, STUDY)
    base = await timed("baseline: read + json.loads", count, lambda: read_and_decode(ledger.pool))
    first = await timed("ViewStore.rebuild (empty views)", count, views.rebuild)
    again = await timed("ViewStore.rebuild (built views)", count, views.rebuild)
    if await views.position() != count:
        raise RuntimeError(f"the views stopped at {await views.position()} of {count}")
    return base, [first, again]


Measure = Callable[[LedgerStore, int], Awaitable[tuple[Measurement, list[Measurement]]]]


async def on_filled_ledger(
    events: list[CloudEvent], measure: Measure
) -> tuple[Measurement, list[Measurement]]:
    """``measure`` a fresh ledger in a fresh schema holding ``events`` (then dropped)."""
    return await on_fresh_ledger(
        lambda ledger, settings: fill(ledger, events, settings.topic),
        lambda ledger: measure(ledger, len(events)),
    )


def ledger_benchmark(
    benchmark: str,
    description: str,
    making: Callable[[int], str],
    events: Callable[[int], list[CloudEvent]],
    measure: Measure,
) -> None:
    """Run a benchmark that ``measure``s a ledger filled with ``events(--entries)``;
    ``making`` says what is being made, while it is."""

    async def run(count: int) -> None:
        progress(making(count))
        base, others = await on_filled_ledger(events(count), measure)
        report(benchmark, base, others)

    main(description, "--entries", 20_000, run)


if __name__ == "__main__":
    ledger_benchmark(
        "rebuild",
        __doc__ or "",
        lambda count: f"making {count} enrollment events",
        enrollment_events,
        measure,
    )
