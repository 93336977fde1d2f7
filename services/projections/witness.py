"""An outside witness's cosignatures of the ledger's checkpoints (c2sp.org/tlog-witness).

The witness (``litewitness`` of ``filippo.io/torchwood``, its own process, key and store)
remembers the newest checkpoint of our origin it cosigned, and cosigns a newer one only
with a consistency proof from that one. ``Cosigner`` submits each new checkpoint
(``POST /add-checkpoint``: ``old <size>``, the proof's hashes in base64, a blank line,
the note); on 409 the witness answers the size it knows, and the checkpoint is submitted
again with a proof from there. The returned signature lines are checked with the
witness's vkey and kept in ``cosignatures``: a cosigned checkpoint is the note with them
appended.

A witness that fails never stops ingest: the cosigner is a worker of its own, and says
what fails in ``/ready`` (``checks.witness``) and in the metrics
(``trialledger_witness_uncosigned_entries``, ``trialledger_witness_failing``). Every
study's ledger has a cosigner of its own (one witness, one log per study's origin): its
check is ``witness:<study>`` and its metrics are labelled ``study="<study>"``, but the
first study's, which keeps ``witness`` and no study, as before studies were named.

``latest_cosigned`` asks the witness itself what it last cosigned for our origin (the
409 answer), and has it cosign that checkpoint again: ``verify`` uses it, because a
database superuser can delete cosignature rows (never forge one).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from services.projections import merkle
from services.projections.domain import Checkpoint
from services.projections.ledger import LedgerStore
from services.projections.notes import NoteError, Verifier, cosigned, open_note, split_note
from shared.adapters.readings import KafkaOffsets, Readings
from shared.study import DEFAULT_STUDY_ID

log = logging.getLogger(__name__)


class WitnessError(Exception):
    """The witness did not cosign: unreachable (``status`` None), or it refused."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Conflict:
    """409: the witness's newest cosigned size of this origin is not the one given."""

    known: int


@dataclass(frozen=True)
class WitnessConfig:
    """``TL_WITNESS_URL`` (where it answers tlog-witness requests) and ``TL_WITNESS_VKEY``
    (its cosignature verifier key: what it returns is checked before it is kept)."""

    url: str
    verifier: Verifier
    interval: float = 2.0  # how often new checkpoints are looked for
    stall_after: float = 30.0  # behind or failing this long: /ready says so

    @property
    def name(self) -> str:
        return f"{self.verifier.name}+{self.verifier.key_id.hex()}"


async def add_checkpoint(
    client: httpx.AsyncClient, url: str, old_size: int, proof: Sequence[bytes], note: str
) -> list[str] | Conflict:
    """One tlog-witness ``add-checkpoint`` request: the signature lines, or the size the
    witness knows (409)."""
    body = f"old {old_size}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    try:
        response = await client.post(f"{url.rstrip('/')}/add-checkpoint",
                                      content=f"{body}\n{note}".encode())  # fmt: skip
    except httpx.HTTPError as error:
        raise WitnessError(
            f"witness {url} did not answer: {type(error).__name__}: {error}"
        ) from None
    if response.status_code == 409:
        known = response.text.strip()
        if not known.isdigit():
            raise WitnessError(f"witness {url} answered 409 without a size: {known[:100]!r}")
        return Conflict(int(known))
    if response.status_code != 200:
        raise WitnessError(f"witness {url} refused ({response.status_code}): "
                           f"{response.text.strip()[:200]}", response.status_code)  # fmt: skip
    return [line + "\n" for line in response.text.splitlines() if line]


def witness_lines(note: str, lines: Sequence[str], witness: Verifier) -> list[str]:
    """The witness's own cosignature lines, checked over ``note``'s text (``NoteError``
    when none verifies)."""
    text, _ = split_note(note)
    opened, _ = open_note(cosigned(text + "\n", lines), [witness])
    if opened != text:
        raise NoteError("the witness cosigned another text")
    mine = [line for line in lines if line.startswith(f"\u2014 {witness.name} ")]
    return [line for line in mine if _line_key(line) == witness.key_id]


def _line_key(line: str) -> bytes:
    return base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])[:4]


class Cosigner:
    """Submits every new checkpoint of ``study_id``'s ledger to the witness and keeps its
    cosignatures."""

    def __init__(
        self,
        ledger: LedgerStore,
        witness: WitnessConfig,
        timeout: float = 10.0,
        study_id: str = DEFAULT_STUDY_ID,
    ) -> None:
        self.ledger = ledger
        self.witness = witness
        self.study_id = study_id
        self.timeout = timeout
        self.known: int | None = None  # the witness's newest cosigned size, as last told
        self.cosigned = 0  # the newest size this process saw cosigned (or found kept)
        self.newest = 0  # the newest checkpoint size it tried to have cosigned
        self.error: str | None = None
        self._failing_since: float | None = None
        self._behind_since: float | None = None
        self._tree: merkle.Frontier | None = None  # the tree at the last size proven from

    async def run(self, stopping: asyncio.Event) -> None:
        """Until ``stopping``: cosign what is new, every ``interval`` seconds. Never
        raises: a witness that is down or refuses is reported, and tried again."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while not stopping.is_set():
                try:
                    await self.step(client)
                except Exception as error:  # reported in /ready and the metrics
                    self._failed(f"{type(error).__name__}: {error}"[:300])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.witness.interval)

    async def step(self, client: httpx.AsyncClient) -> None:
        """Submit, oldest first, each checkpoint newer than the newest one cosigned."""
        # the newest sizes, and the checkpoints after the newest cosigned one: a step reads
        # what is new, not every checkpoint and cosignature the ledger holds
        self.cosigned = max(self.cosigned, await self.ledger.newest_cosigned())
        newest = await self.ledger.newest_noted()
        if newest and newest < self.cosigned:
            self.newest = newest
            self._behind(True)
            raise WitnessError(
                f"the ledger's newest checkpoint {newest} is older than its "
                f"newest cosigned one ({self.cosigned}): was the ledger rolled back? "
                "(docs/auditing.md, Witnesses)"
            )
        after = await self.ledger.checkpoints(after=self.cosigned)
        pending = [c for c in after if c.note is not None]
        self.newest = pending[-1].size if pending else self.cosigned
        self._behind(bool(pending))
        if not pending:
            return
        for checkpoint in pending:
            await self._submit(client, checkpoint)
        # caught up with every checkpoint this step saw: under a steady load the next step
        # finds new ones again, but none has waited longer than a step
        self._behind(False)
        self._recovered()

    async def _submit(self, client: httpx.AsyncClient, checkpoint: Checkpoint) -> None:
        assert checkpoint.note is not None  # noqa: S101 (filtered by the caller)
        old = self.cosigned if self.known is None else self.known
        for _ in range(3):  # a 409 names the size to prove from; another writer may race
            if old > checkpoint.size:
                raise WitnessError(
                    f"the witness has cosigned size {old} of this ledger, beyond its "
                    f"checkpoint {checkpoint.size}: was the ledger rolled back? "
                    "(docs/auditing.md, Witnesses)"
                )
            proof = await self._proof(old, checkpoint.size)
            answer = await add_checkpoint(client, self.witness.url, old, proof, checkpoint.note)
            if isinstance(answer, Conflict):
                old = self.known = answer.known
                continue
            lines = witness_lines(checkpoint.note, answer, self.witness.verifier)
            note = cosigned(checkpoint.note, lines)
            for line in lines:
                await self.ledger.add_cosignature(checkpoint.size, self.witness.name, line, note)
            self.known = self.cosigned = checkpoint.size
            log.info("checkpoint cosigned size=%d origin=%s witness=%s", checkpoint.size,
                     self.ledger.origin, self.witness.name)  # fmt: skip
            return
        raise WitnessError(f"the witness kept answering 409 for size {checkpoint.size}")

    async def _proof(self, old: int, size: int) -> list[bytes]:
        """PROOF(old, D[size]), from the tree's frontier at ``old`` and the leaves after
        it: each checkpoint reads and hashes its new entries, not the whole ledger. The
        frontier is read from the ledger once per process, or again when the witness
        names a size before it."""
        if not old:
            return []
        tree = self._tree if self._tree is not None and self._tree.size <= old else None
        if tree is None:
            tree = merkle.Frontier()
        if tree.size < old:
            tree.extend(await self.ledger.leaves_between(tree.size, old))
        self._tree = tree
        return tree.consistency_proof(await self.ledger.leaves_between(old, size))

    def _failed(self, reason: str) -> None:
        if reason != self.error:
            log.warning("witness failing origin=%s witness=%s url=%s error=%s",
                        self.ledger.origin, self.witness.name, self.witness.url,
                        reason)  # fmt: skip
        self.error = reason
        if self._failing_since is None:
            self._failing_since = time.monotonic()

    def _recovered(self) -> None:
        if self.error is not None:
            log.warning("witness cosigns again origin=%s witness=%s", self.ledger.origin,
                        self.witness.name)  # fmt: skip
        self.error, self._failing_since = None, None

    def _behind(self, behind: bool) -> None:
        if not behind:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = time.monotonic()

    @property
    def check_name(self) -> str:
        """The readiness check of this cosigner: ``witness`` (the first study's ledger), or
        ``witness:<study>``, so that ``/ready`` names the study whose checkpoints wait."""
        return "witness" if self.study_id == DEFAULT_STUDY_ID else f"witness:{self.study_id}"

    async def problems(self) -> dict[str, str]:
        """``{"witness": "ok" | reason}`` (``check_name``): not ok while the newest
        checkpoint has waited for its cosignature longer than ``stall_after`` (the witness
        down, refusing, or never registered for this ledger's origin)."""
        now = time.monotonic()
        since = self._behind_since if self._behind_since is not None else self._failing_since
        if since is None or now - since <= self.witness.stall_after:
            return {self.check_name: "ok"}
        why = f"; last error: {self.error}" if self.error else ""
        return {self.check_name: f"checkpoint {self.newest} of {self.ledger.origin} not "
                f"cosigned by {self.witness.name} ({self.witness.url}) for {now - since:.0f}s; "
                f"newest cosigned: {self.cosigned}{why}"}  # fmt: skip

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        del kafka  # the witness's state is this process's own
        # the first study's series keep no study (to Prometheus, an empty label is none)
        key = (self.witness.name, "" if self.study_id == DEFAULT_STUDY_ID else self.study_id)
        return Readings(
            witness_uncosigned={key: abs(self.newest - self.cosigned)},
            witness_failing={key: int(self.error is not None)},
        )


@dataclass(frozen=True)
class WitnessLatest:
    """What the witness itself says it last cosigned for our origin: its ``size``, and,
    when the ledger still has a checkpoint at that size, that checkpoint ``cosigned`` again
    (None: the ledger has none there, or the witness knows another root: ``mismatch``)."""

    size: int
    cosigned: str | None = None
    mismatch: str | None = None


async def latest_cosigned(
    url: str, checkpoints: Sequence[Checkpoint], timeout: float = 10.0
) -> WitnessLatest:
    """Ask the witness the newest size it cosigned (a request at the ledger's newest
    checkpoint size: the witness answers 409 with its own when they differ), then have
    it cosign the ledger's checkpoint at that size again (``old`` = the size, no proof:
    it cosigns only if the root is the one it knows). Changes nothing at the witness.
    ``WitnessError`` when it cannot be asked."""
    notes = {c.size: c.note for c in checkpoints if c.note is not None}
    if not notes:
        raise WitnessError("the ledger has no C2SP checkpoint to ask the witness about")
    async with httpx.AsyncClient(timeout=timeout) as client:
        size = max(notes)
        for _ in range(3):
            note = notes.get(size)
            if note is None:
                return WitnessLatest(size)
            try:
                answer = await add_checkpoint(client, url, size, [], note)
            except WitnessError as error:
                if error.status == 422:  # a bad proof: its root at this size is another
                    return WitnessLatest(size, mismatch=str(error))
                raise
            if isinstance(answer, Conflict):
                if answer.known == 0:
                    return WitnessLatest(0)
                size = answer.known
                continue
            return WitnessLatest(size, cosigned(note, answer))
    raise WitnessError("the witness's newest size kept changing while it was asked")
