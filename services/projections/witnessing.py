"""The ledger checked against a witness's cosigned checkpoints (no I/O).

A cosigned checkpoint is the witness's statement that it saw our origin's tree at this
size with this root, and that every later one it cosigned extends it. The witness keeps
its state apart from the ledger's database, and its key is the auditor's to trust: a
database superuser can delete cosignatures, never make one. So:

- ``rolled_back``: the witness cosigned a size the ledger no longer reaches (entries
  deleted, together with their checkpoints);
- ``cosigned_mismatch``: the entries up to a cosigned size do not hash to the cosigned
  root (entries rewritten, or a tail forged, before the newest cosignature), located to
  the range after the last cosigned size that still holds;
- ``checkpoint_deleted``: a cosigned checkpoint is no longer among the ledger's
  checkpoints, or one is there with another root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.projections.domain import Checkpoint, EntryRow, Finding, entry_leaf
from services.projections.merkle import Frontier
from services.projections.notes import CheckpointText, NoteError, Verifier, open_note


@dataclass(frozen=True)
class Cosigned:
    """A checkpoint of our origin, signed by the log and cosigned by the witness."""

    size: int
    root: bytes
    note: str


def cosigned_checkpoints(
    notes: Iterable[str], witness: Verifier, log_keys: Sequence[Verifier], origin: str
) -> tuple[list[Cosigned], list[str]]:
    """The notes that carry a valid cosignature of ``witness`` and a valid signature of
    the log, over a checkpoint of ``origin``, newest last (one per size); and why each
    other note was set aside (a forged or altered cosignature is named, never used)."""
    found: dict[int, Cosigned] = {}
    rejected: list[str] = []
    for note in notes:
        try:
            open_note(note, [witness])
            text, _ = open_note(note, log_keys)
            body = CheckpointText.parse(text)
        except NoteError as error:
            rejected.append(f"{note.splitlines()[1:2]}: {error}")
            continue
        if body.origin != origin:
            rejected.append(f"a cosigned checkpoint of another origin: {body.origin!r}")
            continue
        found[body.size] = Cosigned(body.size, body.root, note)
    return [found[size] for size in sorted(found)], rejected


class CosignedRoots:
    """The Merkle root at each cosigned size, over leaves recomputed from the entries'
    bytes, as pages of entries are read (in position order, wherever verification stopped:
    a rewrite before a cosigned size shows against the cosigned root)."""

    def __init__(self, sizes: Iterable[int]) -> None:
        self.roots: dict[int, bytes] = {}
        self._sizes = set(sizes)
        self._last = max(self._sizes, default=0)
        self._frontier = Frontier()

    def add(self, page: Sequence[EntryRow]) -> None:
        frontier = self._frontier
        for position, payload, _ in page:
            if frontier.size >= self._last:
                return
            frontier.append(entry_leaf(position, payload))
            if frontier.size in self._sizes:
                self.roots[frontier.size] = frontier.root()


def check_cosigned(
    roots: Mapping[int, bytes],
    entries: int,
    checkpoints: Sequence[Checkpoint],
    cosigned: Sequence[Cosigned],
    witness: str,
) -> list[Finding]:
    """Every cosigned size still in the ledger of ``entries`` entries, with the cosigned
    root equal to ``roots`` (``CosignedRoots``), and its checkpoint still kept
    (``cosigned`` oldest first)."""
    if not cosigned:
        return []
    findings: list[Finding] = []
    newest = cosigned[-1]
    if entries < newest.size:
        findings.append(Finding(
            entries + 1, "rolled_back",
            f"{witness} cosigned size {newest.size}, but the ledger ends at position "
            f"{entries}: entries {entries + 1}..{newest.size} were removed",
        ))  # fmt: skip
    held = 0
    for c in cosigned:
        if c.size > entries:
            break
        if roots[c.size] != c.root:
            findings.append(Finding(
                held + 1, "cosigned_mismatch",
                f"entries {held + 1}..{c.size} are not those {witness} cosigned at size "
                f"{c.size} (the ledger up to {held} is as cosigned)",
            ))  # fmt: skip
            break
        held = c.size
    stored = {c.size: c for c in checkpoints}
    for c in cosigned:
        if c.size > entries:
            continue  # part of the rollback named above
        kept = stored.get(c.size)
        if kept is None or kept.root != c.root:
            what = "is gone from the checkpoints" if kept is None else "was replaced"
            findings.append(Finding(
                c.size, "checkpoint_deleted",
                f"the checkpoint at size {c.size}, cosigned by {witness}, {what}",
            ))  # fmt: skip
    return findings
