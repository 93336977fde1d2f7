"""Electronic signatures bound to the exact published event they sign (Part 11 §11.50, 11.70).

Scheme ``trial-ledger/record-signature/v2`` (docs/security.md, "Record signatures"): the
Ed25519 signature covers the RFC 8785 (JCS) canonical bytes of a *manifest* made of
published values only, so that a verifier in any language rebuilds it from two published
events: the signature event's own fields (those of ``RecordSigned.v2`` but ``value``) and
``signed_event``, the signed CloudEvent's ``id``, ``type``, ``source``, ``subject`` and
``data``, exactly as published. Moving a signature to another record, version, event type
or service, or altering the signed data, changes the manifest, and verification fails.

Scheme ``trial-ledger/record-signature/v1`` (``RecordSigned.v1``) signed Python-style
canonical JSON of fields named otherwise than published; records signed under it are
never re-signed (they are immutable), so it stays here to load and verify them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.contracts.security import RecordSignedV1, RecordSignedV2
from shared.kernel.keys import key_id

SCHEME = "trial-ledger/record-signature/v2"
ALGORITHM = "Ed25519"

# The signed CloudEvent's attributes the manifest covers. The others are copies of data
# fields (time, recordedtime, correlationid, causationid), constants (specversion,
# datacontenttype), or unknown when signing (sequence: the log position, set on commit).
SIGNED_EVENT_ATTRIBUTES = ("id", "type", "source", "subject", "data")
# Of those, what an event may lack (an event about no subject): null in the manifest,
# whether the attribute is null or absent.
OPTIONAL_ATTRIBUTES = frozenset({"subject"})

# The signature event's fields the manifest covers: every own field of RecordSigned.v2 but
# ``value``, under its published name.
MANIFEST_FIELDS = (
    "scheme",
    "signed_event_id",
    "signed_record_id",
    "signed_version",
    "signer_id",
    "printed_name",
    "meaning",
    "signed_at",
    "assertion_id",
    "key_id",
    "algorithm",
)


def manifest(signed_event: Mapping[str, Any], signature: Mapping[str, Any]) -> dict[str, Any]:
    """What scheme v2 signs: ``signature``'s manifest fields (a ``RecordSigned.v2`` data)
    and ``signed_event``'s covered attributes (a published CloudEvent, as parsed JSON)."""
    return {
        **{name: signature[name] for name in MANIFEST_FIELDS},
        "signed_event": {name: _attribute(signed_event, name) for name in SIGNED_EVENT_ATTRIBUTES},
    }


def _attribute(signed_event: Mapping[str, Any], name: str) -> Any:
    # CloudEvents omits an optional attribute that has no value; records published before
    # writers did so carry `"subject": null`. Both shapes sign as null: one manifest.
    if name in OPTIONAL_ATTRIBUTES:
        return signed_event.get(name)
    return signed_event[name]


def manifest_bytes(signed_event: Mapping[str, Any], signature: Mapping[str, Any]) -> bytes:
    """The manifest's RFC 8785 canonical bytes: the exact message Ed25519 signs.

    Raises ``rfc8785.CanonicalizationError`` for what JCS cannot represent exactly (an
    integer beyond ±(2^53 - 1), a lone surrogate); published events hold neither.
    """
    return rfc8785.dumps(manifest(signed_event, signature))


def published_time(when: datetime) -> str:
    """``signed_at`` as scheme v2 publishes and signs it: UTC, microseconds, ``Z``. Rendered
    once, stored as text and published as the same text, never re-rendered."""
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class Signature:
    """A scheme v2 signature: its manifestation (who, meaning, when) and its proof. Fields
    are named as ``RecordSigned.v2`` publishes them."""

    # The eventsourcing transcoding's name for it (see SignatureV1.stored_as).
    stored_as: ClassVar[str] = "shared.signatures.Signature.v2"

    signed_event_id: UUID
    signed_record_id: UUID
    signed_version: int
    signer_id: str
    printed_name: str
    meaning: str
    signed_at: str  # published_time(): the same text in the manifest and the event
    assertion_id: str  # the identity authority's re-authentication it rests on
    key_id: str
    algorithm: str
    value: str  # standard base64 (RFC 4648 §4, padded) of the Ed25519 signature
    scheme: str = SCHEME

    def manifestation(self) -> dict[str, Any]:
        """What Part 11 §11.50 asks to show with a signed record: who (id and printed
        name), what it means, when (UTC), and the version signed."""
        return {
            "signer_id": self.signer_id,
            "printed_name": self.printed_name,
            "meaning": self.meaning,
            "signed_at": self.signed_at,
            "record_version": self.signed_version,
        }

    def published(self) -> dict[str, Any]:
        """The own fields of its ``RecordSigned.v2`` event, as JSON values."""
        return {
            "scheme": self.scheme,
            "signed_event_id": str(self.signed_event_id),
            "signed_record_id": str(self.signed_record_id),
            "signed_version": self.signed_version,
            "signer_id": self.signer_id,
            "printed_name": self.printed_name,
            "meaning": self.meaning,
            "signed_at": self.signed_at,
            "assertion_id": self.assertion_id,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "value": self.value,
        }


class RecordSigner:
    """Signs published events with a service's Ed25519 record key (scheme v2)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key.public_key())

    def sign(
        self,
        signed_event: Mapping[str, Any],
        *,
        signer_id: str,
        printed_name: str,
        meaning: str,
        signed_at: datetime,
        assertion_id: str,
    ) -> Signature:
        """Sign ``signed_event``, a CloudEvent as it is published (parsed JSON); the
        record and version signed are those its ``data`` names."""
        data = signed_event["data"]
        unsigned = Signature(
            signed_event_id=UUID(str(signed_event["id"])),
            signed_record_id=UUID(str(data["record_id"])),
            signed_version=int(data["version"]),
            signer_id=signer_id,
            printed_name=printed_name,
            meaning=meaning,
            signed_at=published_time(signed_at),
            assertion_id=assertion_id,
            key_id=self.key_id,
            algorithm=ALGORITHM,
            value="",
        )
        message = manifest_bytes(signed_event, unsigned.published())
        return replace(unsigned, value=base64.b64encode(self._key.sign(message)).decode("ascii"))


def verify_published(
    signed_event: Mapping[str, Any], signature_event: Mapping[str, Any], key: Ed25519PublicKey
) -> bool:
    """True only if ``signature_event`` (a published ``RecordSigned``, any version) is a
    signature by ``key`` of exactly ``signed_event`` (the published event it signs), under
    the scheme its type names. Both are whole CloudEvents as published, parsed from JSON
    (before scheme v2 this function took their ``data``: such a call is refused loudly)."""
    if "specversion" not in signed_event or "specversion" not in signature_event:
        raise TypeError("verify_published takes the published CloudEvents, not their data")
    kind = signature_event.get("type")
    try:
        if kind == RecordSignedV2.event_type:
            return _verify(signed_event, signature_event["data"], key)
        if kind == RecordSignedV1.event_type:
            return _verify_v1(signed_event["data"], signature_event["data"], key)
    except (KeyError, TypeError, ValueError):  # a malformed event verifies nothing
        return False
    return False


def _verify(
    signed_event: Mapping[str, Any], signature: Mapping[str, Any], key: Ed25519PublicKey
) -> bool:
    data = signed_event["data"]
    named = [signature[name] for name in ("signed_event_id", "signed_record_id", "signed_version")]
    if named != [signed_event["id"], data["record_id"], data["version"]]:
        return False  # it names another event: not the signature of this one
    if (signature["scheme"], signature["algorithm"]) != (SCHEME, ALGORITHM):
        return False
    if signature["key_id"] != key_id(key):
        return False
    raw = base64.b64decode(signature["value"], validate=True)
    try:
        key.verify(raw, manifest_bytes(signed_event, signature))
    except InvalidSignature:
        return False
    return True


# Scheme v1: kept to load and verify records signed before v2, unchanged.


@dataclass(frozen=True)
class SignatureV1:
    """A scheme v1 signature, as records signed before v2 store and publish it."""

    # Stored records name it so: it was ``shared.signatures.Signature`` when they were made.
    stored_as: ClassVar[str] = "shared.signatures.Signature"

    signer_id: str
    printed_name: str
    meaning: str
    signed_at: datetime
    record_id: UUID
    record_version: int
    content_hash: str
    assertion_id: str
    key_id: str
    algorithm: str
    value: str  # base64 of the Ed25519 signature over ``signed_message``

    def manifestation(self) -> dict[str, Any]:
        """Who, what it means, when (UTC), and the version signed (Part 11 §11.50)."""
        return {
            "signer_id": self.signer_id,
            "printed_name": self.printed_name,
            "meaning": self.meaning,
            "signed_at": self.signed_at.isoformat(),
            "record_version": self.record_version,
        }

    def signed_message(self) -> bytes:
        return _canonical_json_v1(
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


def _canonical_json_v1(content: Mapping[str, Any]) -> bytes:
    # Python's json: keys sorted, no white space, UTF-8; not RFC 8785 (numbers, escapes).
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def _verify_v1(
    signed: Mapping[str, Any], record_signed: Mapping[str, Any], key: Ed25519PublicKey
) -> bool:
    """Scheme v1: SHA-256 of the signed ``data``'s canonical JSON is ``content_hash``, and
    ``value`` signs the canonical JSON of the other fields, ``signed_at`` re-rendered."""
    signature = SignatureV1(
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
    if (signature.record_id, signature.record_version) != (
        UUID(str(signed["record_id"])),
        int(signed["version"]),
    ):
        return False
    if signature.content_hash != hashlib.sha256(_canonical_json_v1(signed)).hexdigest():
        return False
    try:
        key.verify(base64.b64decode(signature.value), signature.signed_message())
    except InvalidSignature:
        return False
    return True
