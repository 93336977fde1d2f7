"""Electronic signatures bound to the exact record they sign (Part 11 §11.50, 11.70).

A signature covers the SHA-256 of the signed event's canonical JSON (its published
``data``), together with the record id, the record version, the signer, the meaning
and the UTC time. Moving it to another record, or to another version of the same
record, changes the hash or the record fields, and verification fails.

Canonical JSON: keys sorted, no insignificant white space, UTF-8.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.keys import key_id

ALGORITHM = "Ed25519"


def canonical_bytes(content: Mapping[str, Any]) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's canonical JSON."""
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


@dataclass(frozen=True)
class Signature:
    """A signature manifestation (signer, printed name, meaning, time) and its proof."""

    signer_id: str
    printed_name: str
    meaning: str
    signed_at: datetime
    record_id: UUID
    record_version: int
    content_hash: str
    assertion_id: str  # the identity authority's re-authentication it rests on
    key_id: str
    algorithm: str
    value: str  # base64 of the Ed25519 signature over ``signed_message``

    def manifestation(self) -> dict[str, Any]:
        """What Part 11 §11.50 asks to show with a signed record: who (id and printed
        name), what it means, when (UTC), and the version signed."""
        return {
            "signer_id": self.signer_id,
            "printed_name": self.printed_name,
            "meaning": self.meaning,
            "signed_at": self.signed_at.isoformat(),
            "record_version": self.record_version,
        }

    def signed_message(self) -> bytes:
        return canonical_bytes(
            {
                "signer_id": self.signer_id,
                "printed_name": self.printed_name,
                "meaning": self.meaning,
                "signed_at": self.signed_at.isoformat(),
                "record_id": str(self.record_id),
                "record_version": self.record_version,
                "content_hash": self.content_hash,
                "assertion_id": self.assertion_id,
                "key_id": self.key_id,
                "algorithm": self.algorithm,
            }
        )


class RecordSigner:
    """Signs records with a service's Ed25519 record key."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key.public_key())

    def sign(
        self,
        content: Mapping[str, Any],
        *,
        record_id: UUID,
        record_version: int,
        signer_id: str,
        printed_name: str,
        meaning: str,
        signed_at: datetime,
        assertion_id: str,
    ) -> Signature:
        unsigned = Signature(
            signer_id=signer_id,
            printed_name=printed_name,
            meaning=meaning,
            signed_at=signed_at,
            record_id=record_id,
            record_version=record_version,
            content_hash=content_hash(content),
            assertion_id=assertion_id,
            key_id=self.key_id,
            algorithm=ALGORITHM,
            value="",
        )
        value = base64.b64encode(self._key.sign(unsigned.signed_message())).decode("ascii")
        return Signature(**{**unsigned.__dict__, "value": value})


def verify(
    signature: Signature,
    content: Mapping[str, Any],
    record_id: UUID,
    record_version: int,
    key: Ed25519PublicKey,
) -> bool:
    """True only if ``signature`` was made by ``key`` over exactly this record version."""
    if (signature.record_id, signature.record_version) != (record_id, record_version):
        return False
    if signature.content_hash != content_hash(content):
        return False
    try:
        key.verify(base64.b64decode(signature.value), signature.signed_message())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_published(
    signed: Mapping[str, Any], record_signed: Mapping[str, Any], key: Ed25519PublicKey
) -> bool:
    """Verify a published ``RecordSigned.v1`` payload against the published signed event."""
    signature = Signature(
        signer_id=record_signed["signer_id"],
        printed_name=record_signed["printed_name"],
        meaning=record_signed["meaning"],
        signed_at=datetime.fromisoformat(str(record_signed["signed_at"])),
        record_id=UUID(str(record_signed["signed_record_id"])),
        record_version=int(record_signed["signed_version"]),
        content_hash=record_signed["content_hash"],
        assertion_id=record_signed["assertion_id"],
        key_id=record_signed["key_id"],
        algorithm=record_signed["algorithm"],
        value=record_signed["value"],
    )
    return verify(signature, signed, UUID(str(signed["record_id"])), int(signed["version"]), key)
