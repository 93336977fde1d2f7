"""Security events every service may publish."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.envelope import EventData


class AccessDeniedV1(EventData):
    """A command refused because the user's roles do not permit it."""

    event_type = "AccessDenied.v1"
    command: str
    reason_code: str
    roles: list[str]


class RecordSignedV1(EventData):
    """An electronic signature of the event at ``signed_version`` of the same record.

    Verify: SHA-256 of the signed event's canonical ``data`` equals ``content_hash``, and
    ``value`` is a valid Ed25519 signature by the key ``key_id`` over the canonical JSON
    of the other signature fields (``shared.signatures.verify_published``).
    """

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
