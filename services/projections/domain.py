"""The ledger's rules, with no I/O: what an entry's leaf is, what a checkpoint signs,
and how a ledger is verified against its hashes and signed checkpoints.

Leaf data of entry ``n`` (RFC 6962 leaf, hashed with a 0x00 prefix):
``b"trial-ledger/entry/v1\\n" + str(n) + b"\\n" + payload`` where ``payload`` is the
event exactly as published (the Kafka record value). Binding the position into the
leaf makes a moved entry fail at its new position.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.projections.merkle import Frontier, leaf_hasher
from services.projections.notes import (
    CheckpointText,
    NoteError,
    Verifier,
    open_note,
    sign_checkpoint_note,
    split_note,
)
from services.projections.reconcile import StoreFinding, StoreSummary

LEAF_PREFIX = b"trial-ledger/entry/v1\n"
CHECKPOINT_PREFIX = "trial-ledger/checkpoint/v1"


_ENTRY_LEAF = leaf_hasher(LEAF_PREFIX)


def entry_leaf(position: int, payload: bytes) -> bytes:
    """The RFC 6962 leaf hash of the ledger entry at ``position``: ``leaf_hash`` of
    ``LEAF_PREFIX + str(position) + "\\n" + payload``, the common prefix hashed once
    (verification hashes every entry of the ledger)."""
    hasher = _ENTRY_LEAF.copy()
    hasher.update(b"%d\n" % position)
    hasher.update(payload)
    return hasher.digest()


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the ledger's first ``size`` entries have Merkle root ``root``.

    Signed as a C2SP checkpoint (``note``: a signed note whose text is the ledger's origin,
    the size and the base64 root; ``services.projections.notes``). A checkpoint of the
    first scheme (``note`` None) signed ``trial-ledger/checkpoint/v1`` statements; those
    are still verified as they were signed.
    """

    size: int
    root: bytes
    signed_at: datetime  # when it was signed (kept beside a C2SP note, not inside it)
    key_id: str
    signature: bytes
    note: str | None = None

    def statement(self) -> bytes:
        """What a checkpoint of the first scheme signed."""
        return checkpoint_statement(self.size, self.root, self.signed_at)

    @classmethod
    def from_json(cls, document: dict[str, object]) -> Checkpoint:
        """A checkpoint as exported (for offline verification)."""
        note = document.get("note")
        return cls(
            int(str(document["size"])),
            bytes.fromhex(str(document["root"])),
            datetime.fromisoformat(str(document["signed_at"])),
            str(document["key_id"]),
            base64.b64decode(str(document["signature"])),
            None if note is None else str(note),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "signed_at": self.signed_at.isoformat(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
            "note": self.note,
        }


def checkpoint_statement(size: int, root: bytes, signed_at: datetime) -> bytes:
    """What a checkpoint of the first scheme signed (before C2SP checkpoints)."""
    return f"{CHECKPOINT_PREFIX}\n{size}\n{root.hex()}\n{signed_at.isoformat()}\n".encode()


def sign_checkpoint(
    key: Ed25519PrivateKey, origin: str, size: int, root: bytes, signed_at: datetime
) -> Checkpoint:
    """A C2SP checkpoint of the ledger ``origin``, signed under the origin's name."""
    note = sign_checkpoint_note(origin, size, root, key)
    _, (line,) = split_note(note)
    identity = f"{origin}+{line.key_id.hex()}"
    return Checkpoint(size, root, signed_at, identity, line.signature, note)


def checkpoint_valid(
    checkpoint: Checkpoint, keys: Sequence[Ed25519PublicKey], origin: str | None
) -> bool:
    """Signed by one of ``keys`` (several: keys rotate), for this ledger's ``origin``,
    over exactly this size and root."""
    if checkpoint.note is None:
        return any(_legacy_valid(checkpoint, key) for key in keys)
    if origin is None:
        return False
    try:
        text, _ = open_note(checkpoint.note, [Verifier.of(origin, key) for key in keys])
        body = CheckpointText.parse(text)
    except NoteError:
        return False
    return (body.origin, body.size, body.root) == (origin, checkpoint.size, checkpoint.root)


def _legacy_valid(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(checkpoint.signature, checkpoint.statement())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Finding:
    """One problem found by verification, at the first position it shows."""

    position: int
    kind: str  # missing | inserted | reordered | altered | checkpoint_mismatch
    #            | bad_signature | checkpoint_gap | unanchored
    detail: str


@dataclass
class VerificationReport:
    """The ledger's integrity (``findings``) and, when the stores were compared, its
    completeness: per service, what is stored but not in the ledger (``stores``)."""

    entries: int = 0
    checkpoints_checked: int = 0
    latest_checkpoint: int = 0  # the size the newest valid checkpoint signs
    findings: list[Finding] = field(default_factory=list)
    stores: list[StoreSummary] | None = None  # None: the stores were not compared

    @property
    def ok(self) -> bool:
        return not self.findings and not self.store_findings

    @property
    def store_findings(self) -> list[StoreFinding]:
        return [f for summary in self.stores or () for f in summary.findings]

    @property
    def first(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.position) if self.findings else None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints_checked": self.checkpoints_checked,
            "latest_checkpoint": self.latest_checkpoint,
            "findings": [f.__dict__ for f in self.findings],
            "stores": None if self.stores is None else [s.to_json() for s in self.stores],
            "store_findings": [f.__dict__ for f in self.store_findings],
        }


@dataclass(frozen=True)
class Trust:
    """What verification trusts: the checkpoint keys (several: keys rotate), the ledger's
    origin (a C2SP checkpoint names it), and how many entries may lie between two
    checkpoints (None: no limit; the writer signs at least every ``TL_CHECKPOINT_EVERY``)."""

    keys: Sequence[Ed25519PublicKey]
    origin: str | None = None
    max_gap: int | None = None


EntryRow = tuple[int, bytes, bytes]
"""One ledger entry as verification reads it: its position, its payload (the published
bytes) and its stored leaf hash, as the adapter cuts them from the database's binary COPY
(``LedgerStore.entry_pages``)."""


class LedgerVerification:
    """The ledger verified as it is read: pages of entries go to ``add`` in position order,
    and ``finish`` gives the report. Every leaf is recomputed, the root is rebuilt and
    compared at every checkpoint's size, every signature is checked, and checkpoints must
    be no further apart than ``trust.max_gap``. Only the Merkle frontier (O(log n) hashes)
    and the entry to classify are kept, so memory does not grow with the ledger.

    The first problem is classified and located: ``missing`` (a gap, or the rest
    renumbered down), ``inserted`` (an extra entry; the rest renumbered up), ``reordered``
    (an entry sits where another belongs), ``altered`` (content changed),
    ``checkpoint_mismatch`` (content changed together with its stored hash: located to the
    range between two checkpoints), ``bad_signature``, ``checkpoint_gap`` (checkpoints
    deleted, or never signed). Pages after the first problem are only counted: a moved
    entry is looked for at every position the ledger has (``read``).
    """

    def __init__(self, checkpoints: Sequence[Checkpoint], trust: Trust) -> None:
        self.report = VerificationReport()
        self.read = 0  # entries read, those after a problem included
        self._checkpoints = checkpoints
        self._trust = trust
        self._pending = deque(sorted(checkpoints, key=lambda c: c.size))
        self._frontier = Frontier()
        self._previous_size = 0  # the size of the last checkpoint checked
        self._stopped = False  # a problem was found: later entries are only counted
        self._suspect: EntryRow | None = None  # the first entry that does not match its
        self._following: EntryRow | None = None  # leaf, and the one after it (to classify)

    def add(self, page: Sequence[EntryRow]) -> None:
        """The next entries, in position order."""
        if self._suspect is not None and self._following is None and page:
            self._following = page[0]
        self.read += len(page)
        if self._stopped:
            return
        leaves = _recomputed(page, self.report.entries + 1)
        if not self._grow(leaves):
            self._stopped = True
        elif len(leaves) < len(page):
            self._stop_at(page, len(leaves))

    def finish(self) -> VerificationReport:
        """The report, once every entry was added."""
        report = self.report
        if self._suspect is not None:
            report.findings.append(_classify(self._suspect, self._following, self.read))
        _check_gaps(report, self._checkpoints, self._trust.max_gap)
        return _finish(report, list(self._pending))

    def _grow(self, leaves: list[bytes]) -> bool:
        """The recomputed ``leaves`` into the tree, each checkpoint checked at its size;
        False when one fails (verification stops there: the leaves after it are left out)."""
        report, pending, done = self.report, self._pending, 0
        while pending and report.entries < pending[0].size <= report.entries + len(leaves) - done:
            size = pending[0].size
            self._frontier.extend(leaves[done : done + size - report.entries])
            done += size - report.entries
            report.entries = size
            root = self._frontier.root()
            while pending and pending[0].size == size:
                _check(report, pending.popleft(), root, self._previous_size, self._trust)
                self._previous_size = size
            if report.findings:
                return False
        self._frontier.extend(leaves[done:])
        report.entries += len(leaves) - done
        return True

    def _stop_at(self, page: Sequence[EntryRow], index: int) -> None:
        """The entry at ``index`` is not at its position, or does not match its leaf."""
        self._stopped = True
        expected = self.report.entries + 1
        if page[index][0] != expected:
            self.report.findings.append(
                Finding(expected, "missing", f"no entry at position {expected}")
            )
            return
        self._suspect = page[index]
        self._following = page[index + 1] if index + 1 < len(page) else None


def _recomputed(page: Sequence[EntryRow], expected: int) -> list[bytes]:
    """The leaves of ``page`` recomputed from their bytes, up to the first entry that is
    not at the ``expected`` position or does not match its stored leaf. (The hot loop of
    verification: one leaf hash and two comparisons per entry, nothing else.)"""
    leaves: list[bytes] = []
    append, start = leaves.append, _ENTRY_LEAF.copy  # entry_leaf, inlined
    for position, payload, leaf in page:
        hasher = start()
        hasher.update(b"%d\n" % position)
        hasher.update(payload)
        recomputed = hasher.digest()
        if position != expected or recomputed != leaf:
            break
        append(recomputed)
        expected += 1
    return leaves


def _check_gaps(
    report: VerificationReport, checkpoints: Sequence[Checkpoint], max_gap: int | None
) -> None:
    """Checkpoints at most ``max_gap`` entries apart, and no longer unsigned tail: a
    rollback that deleted the newest checkpoints, or one deleted in the middle, shows."""
    if max_gap is None:
        return
    sizes = [0, *sorted(c.size for c in checkpoints if c.size <= report.entries)]
    for before, after in zip(sizes, [*sizes[1:], report.entries], strict=True):
        if after - before > max_gap:
            report.findings.append(
                Finding(
                    before + 1,
                    "checkpoint_gap",
                    f"{after - before} entries ({before + 1}..{after}) without a signed "
                    f"checkpoint; the writer signs one at least every {max_gap}",
                )
            )
            return


def _classify(entry: EntryRow, following: EntryRow | None, entries: int) -> Finding:
    """Why ``entry`` does not match its leaf: moved, inserted or altered (``following``:
    the entry after it, if any; ``entries``: how many the ledger has)."""
    here, payload, leaf = entry
    if (
        following is not None
        and leaf == entry_leaf(here + 1, payload)
        and following[2] == entry_leaf(here, following[1])
    ):
        return Finding(here, "reordered", f"the entries at {here} and {here + 1} were swapped")
    if leaf == entry_leaf(here + 1, payload):
        return Finding(here, "missing", "an entry was removed here and the rest renumbered")
    if leaf == entry_leaf(here - 1, payload):
        # the rest moved up by one: the entry before, though well hashed, was inserted
        return Finding(here - 1, "inserted", "an entry that was never appended sits here")
    if following is not None and following[2] == entry_leaf(here, following[1]):
        return Finding(here, "inserted", "an entry that was never appended sits here")
    for position in range(1, entries + 2):
        if position != here and leaf == entry_leaf(position, payload):
            return Finding(here, "reordered", f"the entry here was appended at {position}")
    return Finding(here, "altered", "the content does not match the leaf hash")


def _check(
    report: VerificationReport,
    checkpoint: Checkpoint,
    root: bytes,
    previous_size: int,
    trust: Trust,
) -> None:
    report.checkpoints_checked += 1
    if not checkpoint_valid(checkpoint, trust.keys, trust.origin):
        report.findings.append(
            Finding(checkpoint.size, "bad_signature", f"checkpoint {checkpoint.size} signature")
        )
    elif checkpoint.root == root:
        report.latest_checkpoint = checkpoint.size
    else:
        report.findings.append(
            Finding(
                previous_size + 1,
                "checkpoint_mismatch",
                f"entries {previous_size + 1}..{checkpoint.size} differ from the signed "
                f"checkpoint at size {checkpoint.size}",
            )
        )


def _finish(report: VerificationReport, pending: list[Checkpoint]) -> VerificationReport:
    if pending and not report.findings:
        first = pending[0]
        report.findings.append(
            Finding(
                report.entries + 1,
                "missing",
                f"the signed checkpoint at size {first.size} covers entries the ledger lacks "
                f"after position {report.entries}",
            )
        )
    return report


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
