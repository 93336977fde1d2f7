"""The ledger checked against itself and against what it was appended from: every leaf
recomputed from its bytes, every signed checkpoint's root and signature, every entry
after the newest valid checkpoint against the Kafka record it names (``anchoring``), and,
when the auditor names a witness, the ledger against that witness's cosigned checkpoints
(``witnessing``): those kept in ``cosignatures`` and the newest the witness itself holds.

``verify`` runs it for auditors; the ingester runs it before it signs anything, so that
it never signs a checkpoint over a row it did not append itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.projections.anchoring import kafka_records, unanchored
from services.projections.domain import (
    Checkpoint,
    Finding,
    StoredEntry,
    Trust,
    VerificationReport,
    verify_ledger,
)
from services.projections.ledger import LedgerStore
from services.projections.notes import Verifier
from services.projections.witness import WitnessError, latest_cosigned
from services.projections.witnessing import check_cosigned, cosigned_checkpoints

Progress = Callable[[int], None]


@dataclass(frozen=True)
class WitnessTrust:
    """A witness the auditor trusts: its cosignature verifier key, and where it answers
    (None: only the cosignatures kept in the ledger's database are checked)."""

    verifier: Verifier
    url: str | None = None

    @property
    def name(self) -> str:
        return f"witness {self.verifier.name}"


async def check_ledger(
    ledger: LedgerStore,
    trust: Trust,
    bootstrap: str | None,
    progress: Progress | None = None,
    witness: WitnessTrust | None = None,
) -> VerificationReport:
    """The whole ledger's integrity; without ``bootstrap`` the newest entries are checked
    by their hashes only (benchmarks, offline copies); with ``witness``, against its
    cosigned checkpoints too."""
    checkpoints = await ledger.checkpoints()
    entries = [e async for e in ledger.stored_entries()]
    if progress:
        progress(len(entries))
    report = verify_ledger(entries, checkpoints, trust)
    if bootstrap is not None:
        report.findings.extend(await _anchoring(ledger, bootstrap, report.latest_checkpoint))
    if witness is not None and trust.origin is not None:
        notes = await ledger.cosigned_notes()
        report.findings.extend(await _witnessed(entries, checkpoints, notes, trust, witness))
    return report


async def _witnessed(
    entries: Sequence[StoredEntry],
    checkpoints: Sequence[Checkpoint],
    notes: list[str],
    trust: Trust,
    witness: WitnessTrust,
) -> list[Finding]:
    """The ledger against the cosignatures kept, and the witness's own newest one."""
    assert trust.origin is not None  # noqa: S101 (checked by the caller)
    findings: list[Finding] = []
    latest = None
    if witness.url is not None:
        try:
            latest = await latest_cosigned(witness.url, checkpoints)
        except WitnessError as error:
            findings.append(Finding(max(1, len(entries)), "witness_unreachable",
                                    f"{witness.name}: {error}"[:500]))  # fmt: skip
        if latest is not None and latest.cosigned is not None:
            notes = [*notes, latest.cosigned]
    log_keys = [Verifier.of(trust.origin, key) for key in trust.keys]
    cosigned, rejected = cosigned_checkpoints(notes, witness.verifier, log_keys, trust.origin)
    findings.extend(Finding(1, "bad_cosignature", f"{witness.name}: {why}"[:500])
                    for why in rejected)  # fmt: skip
    findings.extend(check_cosigned(entries, checkpoints, cosigned, witness.name))
    if latest is not None and latest.size and latest.cosigned is None:
        findings.append(_unheld(latest.size, latest.mismatch, len(entries), witness.name))
    unique = {(f.position, f.kind): f for f in reversed(findings)}  # the first of each
    return sorted(unique.values(), key=lambda f: f.position)


def _unheld(size: int, mismatch: str | None, entries: int, name: str) -> Finding:
    """The witness's newest cosigned size, which the ledger cannot show it as cosigned."""
    if mismatch is not None:
        return Finding(size, "cosigned_mismatch", f"{name} holds another root at size {size} "
                       f"than the ledger's checkpoint there: {mismatch}")  # fmt: skip
    if size > entries:
        return Finding(entries + 1, "rolled_back", f"{name} last cosigned size {size}, but "
                       f"the ledger ends at position {entries}")  # fmt: skip
    return Finding(size, "checkpoint_deleted", f"{name} last cosigned size {size}; the "
                   "ledger has no checkpoint there")  # fmt: skip


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
