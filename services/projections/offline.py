"""An export, written and verified with no I/O: ``build_export`` writes the document that
``GET /export`` and ``cli export`` hand out; ``verify_export`` checks one from the file alone
and the keys the auditor trusts (``cli verify-export``; ``tools/verify`` does the same in Go).

The format, ``trial-ledger-export/v3``, is specified in docs/auditing.md ("The export
format"). In short: the signed checkpoint (a C2SP note, cosignatures included), the keys
(embedded for convenience, never trusted for themselves), and entries, each with its
position, its published bytes (``payload``), their parsed copy (``event``) and its inclusion
proof. A full export holds every position from 1 to the checkpoint's size exactly once; a
subject's export holds only that subject's entries, and proves that each of them is in the
signed ledger at its position, not that none of the subject's entries was left out.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.projections import merkle
from services.projections.domain import entry_leaf
from services.projections.notes import (
    COSIGNATURE_V1,
    ED25519,
    CheckpointText,
    NoteError,
    SignatureLine,
    Verifier,
    cosignature_time,
    line_verifies,
    open_note,
    split_note,
)
from shared.contracts.security import RecordSignedV1, RecordSignedV2
from shared.kernel.keys import key_id
from shared.kernel.signatures import verify_published

FORMAT = "trial-ledger-export/v3"
FORMAT_V2 = "trial-ledger-export/v2"  # no scope, no record keys: still read
FULL, SUBJECT = "full", "subject"
SIGNATURE_TYPES = (RecordSignedV1.event_type, RecordSignedV2.event_type)
NEARBY = 8  # a payload that fails its proof is tried at up to 8 failing positions each side


def build_export(
    note: str,
    leaves: Sequence[bytes],
    entries: Sequence[tuple[int, bytes]],
    *,
    subject_id: str | None,
    checkpoint_keys: Sequence[Verifier],
    record_keys: Sequence[Ed25519PublicKey],
    witnesses: Sequence[Verifier] = (),
) -> dict[str, Any]:
    """The export of ``entries`` (position, published bytes), in position order, proven in
    the checkpoint ``note`` (the latest signed one, with any cosignatures) over ``leaves``
    (the ledger's leaf hashes, at least up to the checkpoint's size). ``subject_id`` None:
    a full export, and ``entries`` must then be every position 1..size."""
    text, _ = split_note(note)
    checkpoint = CheckpointText.parse(text)
    proofs = merkle.inclusion_proofs(leaves[: checkpoint.size], [p - 1 for p, _ in entries])
    return {
        "format": FORMAT,
        "origin": checkpoint.origin,
        "scope": FULL if subject_id is None else SUBJECT,
        "subject_id": subject_id,
        "checkpoint": {
            "size": checkpoint.size,
            "root": checkpoint.root.hex(),
            "note": note,
        },
        "keys": {
            "checkpoint": [v.vkey() for v in checkpoint_keys],
            "witness": [v.vkey() for v in witnesses],
            "record": [_raw_base64(k) for k in record_keys],
        },
        "entries": [
            {
                "position": position,
                "payload": payload.decode("utf-8"),
                "event": json.loads(payload),
                "inclusion_proof": [h.hex() for h in proof],
            }
            for (position, payload), proof in zip(entries, proofs, strict=True)
        ],
    }


@dataclass(frozen=True)
class TrustedKeys:
    """What the auditor trusts, known from elsewhere than the export. A kind left empty is
    taken from the export itself, and the report says so: such a check shows the export is
    consistent, not who signed it."""

    checkpoint: Sequence[Verifier] = ()  # the ledger's vkeys (type 0x01), several: rotation
    checkpoint_keys: Sequence[Ed25519PublicKey] = ()  # the same as bare keys (PEM), named
    #                                                   after the checkpoint's own origin
    witnesses: Sequence[Verifier] = ()  # cosigners (vkeys of type 0x04): each must cosign
    record: Sequence[Ed25519PublicKey] = ()  # record-signature keys, found by key_id
    origin: str | None = None  # the ledger the checkpoint must name (else: any)
    full: bool = False  # only a full export will do


@dataclass(frozen=True)
class Failure:
    """One thing that does not verify, at an entry's position (None: the checkpoint or the
    export as a whole)."""

    position: int | None
    kind: str
    detail: str

    def line(self) -> str:
        where = "export" if self.position is None else f"position {self.position}"
        return f"{where}: {self.kind}: {self.detail}"


# Failure kinds, in the order the checks run (docs/auditing.md, "verify-export").
KINDS = {
    "format": "not an export this verifier reads, or a member missing or malformed",
    "checkpoint": "the checkpoint note is malformed, names another origin, or is not signed "
    "by a trusted key of the ledger",
    "checkpoint_copy": "origin, size or root beside the note differ from the note's",
    "cosignature": "a named witness's cosignature does not verify",
    "cosignature_missing": "a named witness did not cosign the checkpoint",
    "out_of_range": "an entry's position is outside 1..size",
    "duplicate": "a position appears more than once",
    "out_of_order": "entries are not in ascending position order",
    "missing": "a position of 1..size has no entry (a full export)",
    "inclusion": "the leaf of the position and payload is not proven in the checkpoint "
    "(the payload, the proof or the root altered)",
    "reordered": "the payload here was appended at another position (entries swapped)",
    "payload": "the payload is not a JSON object without duplicate names",
    "event_copy": "the event copy differs from the payload",
    "scope": "an entry of another subject in a subject's export, or not the full export asked for",
    "signed_event_missing": "a record signature names an event the export does not hold",
    "record_key": "a record signature was made with a key that is not trusted",
    "record_signature": "a record signature does not verify against the event it names",
}


@dataclass
class ExportReport:
    """What ``verify_export`` checked and found; ``ok`` only if nothing failed."""

    format: str = ""
    scope: str = ""
    subject_id: str | None = None
    origin: str = ""
    size: int = 0
    root: str = ""
    entries: int = 0
    signed_by: list[str] = field(default_factory=list)  # the log keys whose signature held
    cosigned_by: list[str] = field(default_factory=list)  # "<witness> at <POSIX time>"
    proofs_verified: int = 0
    record_signatures_verified: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was checked with less than trust

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, position: int | None, kind: str, detail: str) -> None:
        self.failures.append(Failure(position, kind, detail))

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["ok"] = self.ok
        return document


def verify_export(document: object, trusted: TrustedKeys) -> ExportReport:
    """Every check of docs/auditing.md, "verify-export", on a parsed export ``document``:
    the checkpoint's signature and cosignatures, each entry's position, leaf, inclusion
    proof and event copy, completeness (a full export), and every record signature. Never
    raises on a malformed document: that is a ``format`` failure."""
    report = ExportReport()
    export = _read(document, report)
    if export is None:
        return report
    checkpoint = _checkpoint(export, trusted, report)
    if checkpoint is None:
        return report
    entries = _entries(export, checkpoint, report)
    _completeness(export, entries, checkpoint.size, trusted, report)
    _record_signatures(export, entries, trusted, report)
    report.failures.sort(key=lambda f: (f.position or 0, list(KINDS).index(f.kind)))
    return report


# --- the document --------------------------------------------------------------------------


@dataclass
class _Export:
    format: str
    scope: str | None  # None: a v2 export, which does not say
    subject_id: str | None
    origin: str
    checkpoint: Mapping[str, Any]
    keys: Mapping[str, Any]
    entries: list[Any]
    # the keys it carries, read: checkpoint and witness vkeys, record keys
    checkpoint_keys: list[Verifier] = field(default_factory=list)
    witness_keys: list[Verifier] = field(default_factory=list)
    record_keys: list[Ed25519PublicKey] = field(default_factory=list)


class _Malformed(ValueError):
    pass


def _read(document: object, report: ExportReport) -> _Export | None:
    try:
        if not isinstance(document, dict):
            raise _Malformed("the export is not a JSON object")
        kind = document.get("format")
        if kind == FORMAT:
            export = _Export(
                kind,
                _text(document, "scope"),
                document.get("subject_id"),
                _text(document, "origin"),
                _object(document, "checkpoint"),
                _object(document, "keys"),
                _list(document, "entries"),
            )
        elif kind == FORMAT_V2:
            export = _Export(
                kind,
                None,
                None,
                _text(document, "origin"),
                _object(document, "checkpoint"),
                {"checkpoint": _list(document, "vkeys")},
                _list(document, "entries"),
            )
        else:
            raise _Malformed(
                f"format {kind!r} is not read here ({FORMAT}, or {FORMAT_V2}); "
                "export the ledger again to verify it"
            )
        if export.scope not in (None, FULL, SUBJECT):
            raise _Malformed(f"scope {export.scope!r} is neither {FULL!r} nor {SUBJECT!r}")
        if (export.scope == SUBJECT) != isinstance(export.subject_id, str) or (
            export.scope == SUBJECT and not export.subject_id
        ):
            raise _Malformed("subject_id is a subject's id in a subject's export, else null")
    except _Malformed as error:
        report.fail(None, "format", str(error))
        return None
    _embedded_keys(export, report)
    report.format, report.origin = export.format, export.origin
    report.scope, report.subject_id = export.scope or "unstated (format v2)", export.subject_id
    report.entries = len(export.entries)
    return export


def _text(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise _Malformed(f"{name} is missing or not text")
    return value


def _object(document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = document.get(name)
    if not isinstance(value, dict):
        raise _Malformed(f"{name} is missing or not an object")
    return value


def _list(document: Mapping[str, Any], name: str) -> list[Any]:
    value = document.get(name)
    if not isinstance(value, list):
        raise _Malformed(f"{name} is missing or not a list")
    return value


def _raw_base64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


# --- the checkpoint ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signed:
    origin: str
    size: int
    root: bytes


def _checkpoint(export: _Export, trusted: TrustedKeys, report: ExportReport) -> _Signed | None:
    """The checkpoint the entries are proven in: the note's origin, size and root, whatever
    its signatures say (a bad signature is a failure; the entries are still checked
    against the root, so that a consistent forgery shows too)."""
    note = export.checkpoint.get("note")
    if not isinstance(note, str):
        report.fail(None, "format", "checkpoint.note is missing: not a C2SP checkpoint")
        return None
    try:
        text, lines = split_note(note)
        body = CheckpointText.parse(text)
    except NoteError as error:
        report.fail(None, "checkpoint", f"the note is malformed: {error}")
        return None
    report.size, report.root, report.origin = body.size, body.root.hex(), body.origin
    _copies(export, body, report)
    if trusted.origin is not None and body.origin != trusted.origin:
        report.fail(
            None,
            "checkpoint",
            f"it is a checkpoint of {body.origin!r}, not of the ledger {trusted.origin!r}",
        )
    logs = _log_verifiers(export, body.origin, trusted, report)
    try:
        _, signers = open_note(note, logs)
        report.signed_by = [f"{v.name}+{v.key_id.hex()}" for v in signers]
    except NoteError as error:
        report.fail(None, "checkpoint", f"the note's signature: {error}")
    _cosignatures(export, text, lines, logs, trusted, report)
    return _Signed(body.origin, body.size, body.root)


def _copies(export: _Export, body: CheckpointText, report: ExportReport) -> None:
    copies = {
        "origin": (export.origin, body.origin),
        "checkpoint.size": (export.checkpoint.get("size"), body.size),
        "checkpoint.root": (export.checkpoint.get("root"), body.root.hex()),
    }
    for name, (copy, signed) in copies.items():
        if copy != signed or isinstance(copy, bool):
            report.fail(None, "checkpoint_copy", f"{name} is {copy!r}; the note says {signed!r}")


def _log_verifiers(
    export: _Export, origin: str, trusted: TrustedKeys, report: ExportReport
) -> list[Verifier]:
    given = [*trusted.checkpoint, *(Verifier.of(origin, k) for k in trusted.checkpoint_keys)]
    if not given:
        given = export.checkpoint_keys
        report.notes.append(
            f"checkpoint keys: only the export's own ({len(given)}); this shows the export "
            "is consistent, not that the ledger signed it: give --vkey or --checkpoint-key"
        )
    logs = [v for v in given if v.kind == ED25519 and v.name == origin]
    if len(logs) < len(given):
        report.notes.append(
            f"{len(given) - len(logs)} checkpoint key(s) are not named {origin!r} (the "
            "checkpoint's origin): not used"
        )
    return logs


def _cosignatures(
    export: _Export,
    text: str,
    lines: list[SignatureLine],
    logs: list[Verifier],
    trusted: TrustedKeys,
    report: ExportReport,
) -> None:
    witnesses = list(trusted.witnesses)
    if not witnesses:
        witnesses = export.witness_keys
        if witnesses:
            report.notes.append(
                f"witness keys: only the export's own ({len(witnesses)}); give --witness "
                "with the keys of the witnesses you rely on"
            )
    for witness in witnesses:
        own = [line for line in lines if (line.name, line.key_id) == (witness.name, witness.key_id)]
        if not own:
            report.fail(None, "cosignature_missing", f"no cosignature by {witness.vkey()}")
        for line in own:
            if line_verifies(witness, text, line):
                report.cosigned_by.append(f"{witness.name} at {cosignature_time(line)}")
            else:
                report.fail(
                    None, "cosignature", f"the cosignature of {witness.name} does not verify"
                )
    known = {(v.name, v.key_id) for v in [*logs, *witnesses]}
    others = sorted({line.name for line in lines if (line.name, line.key_id) not in known})
    if others:
        report.notes.append(f"signature lines by keys not given, not checked: {others}")


def _embedded_keys(export: _Export, report: ExportReport) -> None:
    """The keys the export carries (for convenience; trusted only when the auditor gives
    none); a malformed one is a ``format`` failure."""
    for kind, type_, into in (
        ("checkpoint", ED25519, export.checkpoint_keys),
        ("witness", COSIGNATURE_V1, export.witness_keys),
    ):
        for vkey in _embedded_list(export, kind, report):
            try:
                verifier = Verifier.parse(str(vkey))
            except NoteError as error:
                report.fail(None, "format", f"keys.{kind}: {error}")
                continue
            if verifier.kind == type_:
                into.append(verifier)
    for encoded in _embedded_list(export, "record", report):
        try:
            raw = base64.b64decode(str(encoded), validate=True)
            export.record_keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            report.fail(None, "format", f"keys.record: {encoded!r} is not a base64 Ed25519 key")


def _embedded_list(export: _Export, kind: str, report: ExportReport) -> list[Any]:
    found = export.keys.get(kind, [])
    if not isinstance(found, list):
        report.fail(None, "format", f"keys.{kind} is not a list")
        return []
    return found


# --- the entries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    position: int
    payload: bytes  # the published bytes: the payload text in UTF-8
    proof: list[bytes]
    event: Any  # the payload parsed; None when it is not a JSON object


def _entries(export: _Export, checkpoint: _Signed, report: ExportReport) -> list[_Entry]:
    """Each entry's position, inclusion, payload and event copy; the entries that can be
    used further (well formed, in range), in the export's order."""
    entries: list[_Entry] = []
    seen: set[int] = set()
    previous = 0
    unproven: list[_Entry] = []
    for index, raw in enumerate(export.entries):
        entry = _entry(raw, index, report)
        if entry is None:
            continue
        here = entry.position
        if not 1 <= here <= checkpoint.size:
            report.fail(here, "out_of_range", f"the checkpoint holds 1..{checkpoint.size}")
            continue
        if here in seen:
            report.fail(here, "duplicate", "this position appears more than once")
            continue
        if here < previous:
            report.fail(here, "out_of_order", f"listed after position {previous}")
        seen.add(here)
        previous = max(previous, here)
        if _proven(entry, here, entry.proof, checkpoint):
            report.proofs_verified += 1
        else:
            unproven.append(entry)
        _event_copy(raw, entry, report)
        entries.append(entry)
    _classify(unproven, checkpoint, report)
    return entries


def _entry(raw: object, index: int, report: ExportReport) -> _Entry | None:
    if not isinstance(raw, dict):
        report.fail(None, "format", f"entries[{index}] is not an object")
        return None
    position = raw.get("position")
    if not isinstance(position, int) or isinstance(position, bool):
        report.fail(None, "format", f"entries[{index}] has no integer position")
        return None
    payload, proof = raw.get("payload"), raw.get("inclusion_proof")
    hashes = _hashes(proof)
    if not isinstance(payload, str) or hashes is None or "event" not in raw:
        report.fail(
            position,
            "format",
            "an entry has a payload (text), an event, and an inclusion_proof (hex SHA-256 hashes)",
        )
        return None
    try:
        data = payload.encode("utf-8")
    except UnicodeEncodeError:
        report.fail(position, "format", "the payload holds a lone surrogate: not UTF-8 text")
        return None
    try:
        event = _parse(payload)
    except ValueError as error:
        report.fail(position, "payload", str(error))
        event = None
    if event is not None and not isinstance(event, dict):
        report.fail(position, "payload", "the payload is not a JSON object")
        event = None
    return _Entry(position, data, hashes, event)


def _hashes(proof: object) -> list[bytes] | None:
    if not isinstance(proof, list) or not all(isinstance(h, str) for h in proof):
        return None
    try:
        hashes = [bytes.fromhex(h) for h in proof]
    except ValueError:
        return None
    return hashes if all(len(h) == merkle.HASH_SIZE for h in hashes) else None


def _parse(payload: str) -> Any:
    """The payload as JSON, refusing what parsers read differently: a member name twice, and
    NaN or Infinity (not JSON)."""

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        if len(set(names)) < len(names):
            raise ValueError("the payload names a member twice")
        return dict(pairs)

    def constant(name: str) -> Any:
        raise ValueError(f"the payload holds {name}, which is not JSON")

    try:
        return json.loads(payload, object_pairs_hook=members, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"the payload is not JSON: {error}") from None


def _event_copy(raw: Mapping[str, Any], entry: _Entry, report: ExportReport) -> None:
    if entry.event is not None and not same_json(raw["event"], entry.event):
        report.fail(
            entry.position,
            "event_copy",
            "the event copy differs from the payload: "
            f"{_difference(raw['event'], entry.event) or 'the event'}",
        )


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: same type (true is not 1), objects with the same members,
    arrays in order, numbers equal as IEEE 754 doubles (as JCS and most parsers read them)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return _double(a) == _double(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _double(number: float) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.copysign(math.inf, number)


def _difference(copy: Any, event: Any, path: str = "") -> str:
    """Where the copy first differs (a member path), for the report."""
    if isinstance(copy, dict) and isinstance(event, dict):
        for name in sorted(copy.keys() | event.keys()):
            if name not in copy or name not in event:
                return f"{path}.{name}"
            if not same_json(copy[name], event[name]):
                return _difference(copy[name], event[name], f"{path}.{name}")
    return path


def _classify(unproven: list[_Entry], checkpoint: _Signed, report: ExportReport) -> None:
    """An entry whose leaf is not proven: moved from another of the failing positions (two
    entries swapped), or altered."""
    proofs = {e.position: e.proof for e in unproven}
    positions = sorted(proofs)
    for entry in unproven:
        # the nearest failing positions only (bounded: a wrong root fails them all)
        here = positions.index(entry.position)
        nearby = positions[max(0, here - NEARBY) : here + NEARBY + 1]
        moved = [
            other
            for other in nearby
            if other != entry.position
            and any(
                _proven(entry, other, proof, checkpoint) for proof in (entry.proof, proofs[other])
            )
        ]
        if moved:
            detail = f"this payload was appended at position {moved[0]}"
            report.fail(entry.position, "reordered", detail)
        else:
            detail = f"its leaf is not proven in the checkpoint of size {checkpoint.size}"
            report.fail(entry.position, "inclusion", detail)


def _proven(entry: _Entry, position: int, proof: list[bytes], checkpoint: _Signed) -> bool:
    leaf = entry_leaf(position, entry.payload)
    return merkle.verify_inclusion(leaf, position - 1, checkpoint.size, proof, checkpoint.root)


def _completeness(
    export: _Export,
    entries: list[_Entry],
    size: int,
    trusted: TrustedKeys,
    report: ExportReport,
) -> None:
    positions = {e.position for e in entries}
    if export.scope == SUBJECT:
        for entry in entries:
            subject = entry.event.get("subject") if entry.event is not None else None
            if subject != export.subject_id:
                report.fail(
                    entry.position,
                    "scope",
                    f"an entry of {subject!r} in the export of {export.subject_id!r}",
                )
        report.notes.append(
            f"a subject's export: each of its {len(entries)} entries is in the signed ledger "
            f"at its position; it does not show that every entry of {export.subject_id!r} is "
            "here (a full export does)"
        )
    complete = len(positions) == size
    if export.scope is None and not trusted.full:
        if complete:
            report.scope = "full (format v2: every position 1..size)"
        else:
            report.notes.append(
                f"format v2 states no scope: it holds {len(positions)} of the "
                f"{size} positions, and none is claimed complete"
            )
        return
    if trusted.full and export.scope == SUBJECT:
        report.fail(None, "scope", f"a full export was asked for; this is {export.subject_id}'s")
        return
    if export.scope == SUBJECT:
        return
    missing = sorted(set(range(1, size + 1)) - positions)
    for first, last in _runs(missing):
        span = f"position {first}" if first == last else f"positions {first}..{last}"
        report.fail(first, "missing", f"{span} of the checkpoint's 1..{size}: not in the export")


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


# --- record signatures ---------------------------------------------------------------------


def _record_signatures(
    export: _Export, entries: list[_Entry], trusted: TrustedKeys, report: ExportReport
) -> None:
    """Each ``RecordSigned`` entry against the event it names, with the key its ``key_id``
    names (docs/security.md): the events as parsed from the payloads, which the proofs
    cover, never the copies."""
    keys = list(trusted.record)
    if not keys:
        keys = export.record_keys
        report.notes.append(
            f"record keys: only the export's own ({len(keys)}); give --record-key with the "
            "record public keys you trust"
        )
    by_key_id = {key_id(k): k for k in keys}
    events = [e for e in entries if e.event is not None]
    by_id = {_key(e.event.get("id")): e for e in reversed(events)}
    by_record = {_record_version(e.event): e for e in reversed(events)}
    for entry in events:
        if entry.event.get("type") not in SIGNATURE_TYPES:
            continue
        signature = entry.event.get("data")
        if not isinstance(signature, dict):
            report.fail(entry.position, "record_signature", "a RecordSigned event without data")
            continue
        signed = (
            by_id.get(_key(signature.get("signed_event_id")))
            if entry.event["type"] == RecordSignedV2.event_type
            else by_record.get(
                _key(signature.get("signed_record_id"), signature.get("signed_version"))
            )
        )
        if signed is None:
            report.fail(
                entry.position,
                "signed_event_missing",
                f"the event it signs ({_named(signature)}) is not in this export",
            )
            continue
        named = signature.get("key_id")
        key = by_key_id.get(named) if isinstance(named, str) else None
        if key is None:
            report.fail(
                entry.position,
                "record_key",
                f"made with key {signature.get('key_id')!r}, not a trusted record key",
            )
        elif _signature_valid(signed.event, entry.event, key):
            report.record_signatures_verified += 1
        else:
            report.fail(
                entry.position,
                "record_signature",
                "does not verify against the "
                f"{signed.event.get('type')} at position {signed.position}",
            )


def _record_version(event: Mapping[str, Any]) -> str:
    data = event.get("data")
    return _key(data.get("record_id"), data.get("version")) if isinstance(data, dict) else ""


def _key(*values: object) -> str:
    """A lookup key of JSON values (any: the export is not trusted to be well typed)."""
    return json.dumps(values, sort_keys=True)


def _signature_valid(
    signed: Mapping[str, Any], signature: Mapping[str, Any], key: Ed25519PublicKey
) -> bool:
    try:
        return verify_published(signed, signature, key)
    except TypeError:  # not CloudEvents (no specversion): nothing signed
        return False


def _named(signature: Mapping[str, Any]) -> str:
    if "signed_event_id" in signature:
        return f"event {signature['signed_event_id']}"
    return f"record {signature.get('signed_record_id')} version {signature.get('signed_version')}"
