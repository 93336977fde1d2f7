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
    LedgerVerification,
    Trust,
    VerificationReport,
)
from services.projections.ledger import LedgerStore
from services.projections.notes import Verifier
from services.projections.witness import WitnessError, WitnessLatest, latest_cosigned
from services.projections.witnessing import (
    Cosigned,
    CosignedRoots,
    check_cosigned,
    cosigned_checkpoints,
)

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
    cosigned checkpoints too. The entries are verified page by page as they are read, so
    memory does not grow with the ledger; every page is read, also after a problem (the
    report names how many entries there are, and where a moved entry came from)."""
    checkpoints = await ledger.checkpoints()
    cosigning = None
    if witness is not None and trust.origin is not None:
        cosigning = await _ask_witness(ledger, checkpoints, trust, witness)
    verification = LedgerVerification(checkpoints, trust)
    async for page in ledger.entry_pages():
        verification.add(page)
        if cosigning is not None:
            cosigning.roots.add(page)
        if progress:
            progress(verification.read)
    report = verification.finish()
    if bootstrap is not None:
        report.findings.extend(await _anchoring(ledger, bootstrap, report.latest_checkpoint))
    if cosigning is not None:
        report.findings.extend(cosigning.findings(verification.read))
    return report


@dataclass
class _Cosigning:
    """What a witness vouches for, gathered before the ledger is read: the checkpoints it
    cosigned (kept in the database, and its own newest), and the roots at their sizes,
    filled in as the entries are read."""

    witness: WitnessTrust
    checkpoints: Sequence[Checkpoint]
    cosigned: list[Cosigned]
    rejected: list[str]  # why each note was set aside
    latest: WitnessLatest | None  # the witness's own newest (None: not asked, or no answer)
    unreachable: str | None  # why the witness could not be asked
    roots: CosignedRoots

    def findings(self, entries: int) -> list[Finding]:
        """The ledger of ``entries`` entries against the cosignatures kept, and the
        witness's own newest one (the first finding of each kind at each position)."""
        name = self.witness.name
        findings: list[Finding] = []
        if self.unreachable is not None:
            findings.append(Finding(max(1, entries), "witness_unreachable",
                                    f"{name}: {self.unreachable}"[:500]))  # fmt: skip
        findings.extend(Finding(1, "bad_cosignature", f"{name}: {why}"[:500])
                        for why in self.rejected)  # fmt: skip
        roots = self.roots.roots
        findings.extend(check_cosigned(roots, entries, self.checkpoints, self.cosigned, name))
        latest = self.latest
        if latest is not None and latest.size and latest.cosigned is None:
            findings.append(_unheld(latest.size, latest.mismatch, entries, name))
        unique = {(f.position, f.kind): f for f in reversed(findings)}  # the first of each
        return sorted(unique.values(), key=lambda f: f.position)


async def _ask_witness(
    ledger: LedgerStore, checkpoints: Sequence[Checkpoint], trust: Trust, witness: WitnessTrust
) -> _Cosigning:
    """The cosignatures kept, and the witness's own newest one when it answers somewhere."""
    assert trust.origin is not None  # noqa: S101 (checked by the caller)
    notes = await ledger.cosigned_notes()
    latest, unreachable = None, None
    if witness.url is not None:
        try:
            latest = await latest_cosigned(witness.url, checkpoints)
        except WitnessError as error:
            unreachable = str(error)
        if latest is not None and latest.cosigned is not None:
            notes = [*notes, latest.cosigned]
    log_keys = [Verifier.of(trust.origin, key) for key in trust.keys]
    cosigned, rejected = cosigned_checkpoints(notes, witness.verifier, log_keys, trust.origin)
    roots = CosignedRoots(c.size for c in cosigned)
    return _Cosigning(witness, checkpoints, cosigned, rejected, latest, unreachable, roots)


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
