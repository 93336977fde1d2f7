"""The ledger checked against itself and against what it was appended from: every leaf
recomputed from its bytes, every signed checkpoint's root and signature, and every entry
after the newest valid checkpoint against the Kafka record it names (``anchoring``).

``verify`` runs it for auditors; the ingester runs it before it signs anything, so that
it never signs a checkpoint over a row it did not append itself.
"""

from __future__ import annotations

from collections.abc import Callable

from services.projections.anchoring import kafka_records, unanchored
from services.projections.domain import Finding, Trust, VerificationReport, verify_ledger
from services.projections.ledger import LedgerStore

Progress = Callable[[int], None]


async def check_ledger(
    ledger: LedgerStore,
    trust: Trust,
    bootstrap: str | None,
    progress: Progress | None = None,
) -> VerificationReport:
    """The whole ledger's integrity; without ``bootstrap`` the newest entries are checked
    by their hashes only (benchmarks, offline copies)."""
    checkpoints = await ledger.checkpoints()
    entries = [e async for e in ledger.stored_entries()]
    if progress:
        progress(len(entries))
    report = verify_ledger(entries, checkpoints, trust)
    if bootstrap is not None:
        report.findings.extend(await _anchoring(ledger, bootstrap, report.latest_checkpoint))
    return report


async def _anchoring(ledger: LedgerStore, bootstrap: str, after: int) -> list[Finding]:
    tail = await ledger.tail_entries(after)
    try:
        records = await kafka_records(bootstrap, tail)
    except Exception as error:  # unreachable broker: the tail cannot be vouched for
        if not tail:
            return []
        detail = (f"{len(tail)} entries after the newest checkpoint could not be checked "
                  f"against Kafka: {type(error).__name__}: {error}")[:500]  # fmt: skip
        return [Finding(tail[0].position, "unanchored", detail)]
    return unanchored(tail, records)
