"""Security events every service may publish."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.kernel.envelope import EventData


class AccessDeniedV1(EventData):
    """A command refused because the user's roles do not permit it."""

    event_type = "AccessDenied.v1"
    command: str
    reason_code: str
    roles: list[str]


class AccessDeniedV2(EventData):
    """A change of another account refused to an administrator (identity): what
    ``AccessDenied.v1`` says, and the account the change was for. Every other denial is
    still published as ``AccessDenied.v1``."""

    event_type = "AccessDenied.v2"
    command: str
    reason_code: str
    roles: list[str] = Field(description="every role the refused user holds")
    target_user_id: str = Field(description="the account the refused change was for")


class RecordSignedV1(EventData):
    """An electronic signature of the event at ``signed_version`` of the same record.

    Verify: SHA-256 of the signed event's canonical ``data`` equals ``content_hash``, and
    ``value`` is a valid Ed25519 signature by the key ``key_id`` over the canonical JSON
    of the other signature fields (``shared.signatures.verify_published``).
    """

    # Scheme trial-ledger/record-signature/v1, made before RecordSigned.v2. Published, so
    # never edited, its docstring (the schema's description) included.
    event_type = "RecordSigned.v1"
    signed_record_id: UUID
    signed_version: int
    signer_id: str
    printed_name: str
    meaning: str
    signed_at: datetime
    content_hash: str
    assertion_id: str
    key_id: str
    algorithm: str
    value: str


UTC_MICROSECONDS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"


class RecordSignedV2(EventData):
    """An electronic signature of the event ``signed_event_id`` (``signed_version`` of the
    same record), under scheme ``trial-ledger/record-signature/v2`` (docs/security.md).

    ``value`` is an Ed25519 signature by the key ``key_id`` over the RFC 8785 (JCS) bytes of
    the manifest: this event's fields but ``value``, and ``signed_event``, the signed
    CloudEvent's ``id``, ``type``, ``source``, ``subject`` and ``data`` as published.
    """

    event_type = "RecordSigned.v2"
    scheme: Literal["trial-ledger/record-signature/v2"] = Field(
        description="how the signature was made; names the manifest and its canonical form"
    )
    signed_event_id: UUID = Field(description="CloudEvents id of the signed event")
    signed_record_id: UUID
    signed_version: int = Field(ge=1)
    signer_id: str
    printed_name: str = Field(description="the signer's name when signing (a copy, not a join)")
    meaning: str = Field(description="authorship, review, approval or responsibility")
    signed_at: str = Field(
        pattern=UTC_MICROSECONDS,
        json_schema_extra={"format": "date-time"},
        description="UTC, microseconds, Z; signed as this exact text",
    )
    assertion_id: str = Field(description="the identity service's signing re-authentication")
    key_id: str = Field(description="first 16 hex digits of SHA-256 of the raw public key")
    algorithm: Literal["Ed25519"]
    value: str = Field(description="standard base64 (RFC 4648 section 4, padded), 64 bytes")
