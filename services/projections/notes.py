"""C2SP signed notes, checkpoints and cosignatures (no I/O).

- signed-note (c2sp.org/signed-note@v1.0.0): a text ending in a newline, a blank line,
  and signature lines ``— <key name> base64(4-byte key ID || signature)``. Ed25519 key
  IDs are ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``; a verifier key (vkey) is
  ``<name>+<hex key ID>+base64(0x01 || public key)``.
- tlog-checkpoint (c2sp.org/tlog-checkpoint@v1.0.0): the text is the log's origin, the
  tree size in decimal, and the RFC 6962 root in base64, one per line.
- tlog-cosignature (c2sp.org/tlog-cosignature/v1): a witness's Ed25519 signature (type
  0x04) over ``cosignature/v1\\ntime <t>\\n`` and the checkpoint text, carried as
  ``key ID || 8-byte big-endian time || signature``.

Go's ``golang.org/x/mod/sumdb/note`` reads and writes the same bytes; ``tools/verify``
checks an export with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"


class NoteError(ValueError):
    """A note, checkpoint, key or signature that is malformed or does not verify."""


@dataclass(frozen=True)
class Verifier:
    """A public key that may sign notes: its name, key ID, type and key."""

    name: str
    key_id: bytes
    kind: int  # ED25519 (a log) or COSIGNATURE_V1 (a witness)
    key: Ed25519PublicKey

    @classmethod
    def of(cls, name: str, key: Ed25519PublicKey, kind: int = ED25519) -> Verifier:
        _check_name(name)
        return cls(name, key_id(name, key, kind), kind, key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A verifier key: ``<name>+<hex key ID>+base64(type || public key)``."""
        try:
            name, hex_id, encoded = vkey.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw[1:])
        except (ValueError, binascii.Error) as error:
            raise NoteError(f"not an Ed25519 verifier key: {vkey!r}") from error
        verifier = cls.of(name, key, raw[0])
        if raw[0] not in (ED25519, COSIGNATURE_V1) or verifier.key_id.hex() != hex_id:
            raise NoteError(f"verifier key {vkey!r}: wrong type or key ID")
        return verifier

    @classmethod
    def parse_kind(cls, vkey: str, kind: int) -> Verifier:
        """A verifier key of type ``kind`` only: a log's key (0x01) is not a witness's
        (0x04), nor the reverse."""
        verifier = cls.parse(vkey)
        if verifier.kind != kind:
            raise NoteError(f"{vkey!r} is of type {verifier.kind:#04x}, not {kind:#04x}")
        return verifier

    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([self.kind]) + _raw(self.key)).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def key_id(name: str, key: Ed25519PublicKey, kind: int = ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + _raw(key)).digest()[:4]


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """``text`` (newline-terminated) signed by ``key`` under ``name``."""
    _check_text(text)
    identity = key_id(name, key.public_key())
    signature = base64.b64encode(identity + key.sign(text.encode())).decode()
    return f"{text}\n{DASH} {name} {signature}\n"


@dataclass(frozen=True)
class SignatureLine:
    name: str
    key_id: bytes
    signature: bytes  # after the key ID (a cosignature: time, then signature)

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


def split_note(note: str) -> tuple[str, list[SignatureLine]]:
    """A signed note's text and its signature lines (none verified yet)."""
    text, separator, block = note.rpartition("\n\n")
    if not separator or not block.endswith("\n"):
        raise NoteError("a signed note is a text, a blank line, and signature lines")
    text += "\n"
    _check_text(text)
    lines = []
    for line in block[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise NoteError(f"signature line {line!r} is not base64") from error
        if dash != DASH or not name or len(raw) < 5:
            raise NoteError(f"not a signature line: {line!r}")
        lines.append(SignatureLine(name, raw[:4], raw[4:]))
    return text, lines


def open_note(note: str, verifiers: Iterable[Verifier]) -> tuple[str, list[Verifier]]:
    """The note's text and the known keys that signed it. Unknown signatures are
    ignored; a known key's signature that fails makes the whole note fail; a note with
    no verified signature fails."""
    text, lines = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    signed: list[Verifier] = []
    for line in lines:
        verifier = known.get((line.name, line.key_id))
        if verifier is None:
            continue
        if not _verifies(verifier, text, line.signature):
            raise NoteError(f"the signature of {line.name} does not verify")
        signed.append(verifier)
    if not signed:
        raise NoteError("no signature by a known key")
    return text, signed


def line_verifies(verifier: Verifier, text: str, line: SignatureLine) -> bool:
    """Whether ``line`` is ``verifier``'s valid signature of the note text ``text``: its
    name and key ID, and a valid Ed25519 signature (a cosignature: over the timestamped
    message of c2sp.org/tlog-cosignature)."""
    if (line.name, line.key_id) != (verifier.name, verifier.key_id):
        return False
    return _verifies(verifier, text, line.signature)


def cosignature_time(line: SignatureLine) -> int:
    """When a witness made a cosignature (POSIX seconds)."""
    return int(struct.unpack(">Q", line.signature[:8])[0])


# --- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointText:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> CheckpointText:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError("a checkpoint is an origin, a size and a root, one per line")
        origin, size, root = lines[:3]
        if not size.isdigit() or (size.startswith("0") and size != "0"):
            raise NoteError(f"checkpoint size {size!r} is not a decimal without leading zeroes")
        try:
            digest = base64.b64decode(root, validate=True)
        except binascii.Error as error:
            raise NoteError("checkpoint root is not base64") from error
        if len(digest) != 32:
            raise NoteError("checkpoint root is not a SHA-256 hash")
        return cls(origin, int(size), digest)


def sign_checkpoint_note(origin: str, size: int, root: bytes, key: Ed25519PrivateKey) -> str:
    """A checkpoint of the log ``origin``, signed by its key under the origin's name."""
    return sign_note(CheckpointText(origin, size, root).text(), origin, key)


def cosigned(note: str, signature_lines: Sequence[str]) -> str:
    """``note`` with a witness's signature lines added (as tlog-witness returns them)."""
    return note + "".join(line if line.endswith("\n") else line + "\n" for line in signature_lines)


def _verifies(verifier: Verifier, text: str, signature: bytes) -> bool:
    if verifier.kind == COSIGNATURE_V1:
        if len(signature) != 8 + 64:
            return False
        timestamp = struct.unpack(">Q", signature[:8])[0]
        message, signature = f"cosignature/v1\ntime {timestamp}\n{text}".encode(), signature[8:]
    else:
        message = text.encode()
    try:
        verifier.key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _check_text(text: str) -> None:
    if not text.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note's text ends in a newline and has no other control characters")
