"""Verify a Trial Ledger record signature (scheme trial-ledger/record-signature/v2) from the
two published events alone, with nothing from the Trial Ledger: RFC 8785 and Ed25519.

Usage: python verify_signature.py SIGNED_EVENT.json SIGNATURE_EVENT.json RECORD_KEY.pub
Each event is a CloudEvent as read off its topic (or an export's entries[].event); the key
is the PEM public key whose key_id the signature names. Exit code 0: valid; 1: not.
"""

import base64
import hashlib
import json
import sys
from typing import Any

import rfc8785  # pip install rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEME = "trial-ledger/record-signature/v2"
MANIFEST_FIELDS = ("scheme", "signed_event_id", "signed_record_id", "signed_version",
                   "signer_id", "printed_name", "meaning", "signed_at", "assertion_id",
                   "key_id", "algorithm")  # fmt: skip
SIGNED_EVENT_ATTRIBUTES = ("id", "type", "source", "subject", "data")


def problem(signed: dict[str, Any], signature_event: dict[str, Any], key: Ed25519PublicKey) -> str:
    """What is wrong with the signature; "" when it is valid."""
    signature, data = signature_event["data"], signed["data"]
    if signature_event["type"] != "RecordSigned.v2" or signature.get("scheme") != SCHEME:
        return f"not a {SCHEME} signature: {signature_event['type']}"
    if signature["algorithm"] != "Ed25519":
        return f"unknown algorithm {signature['algorithm']}"
    named = [signature[name] for name in ("signed_event_id", "signed_record_id", "signed_version")]
    if named != [signed["id"], data["record_id"], data["version"]]:
        return "it is the signature of another event"
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if signature["key_id"] != hashlib.sha256(raw).hexdigest()[:16]:
        return f"made with key {signature['key_id']}, not this one"
    manifest = {name: signature[name] for name in MANIFEST_FIELDS}
    # an event about no subject has "subject": null, or (CloudEvents' way) no subject
    manifest["signed_event"] = {name: signed.get(name) for name in SIGNED_EVENT_ATTRIBUTES}
    try:
        key.verify(base64.b64decode(signature["value"], validate=True), rfc8785.dumps(manifest))
    except (InvalidSignature, ValueError):
        return "the signature does not verify: the event or the signature was altered"
    return ""


def main(signed_path: str, signature_path: str, key_path: str) -> int:
    with open(signed_path, encoding="utf-8") as file:
        signed = json.load(file)
    with open(signature_path, encoding="utf-8") as file:
        signature_event = json.load(file)
    with open(key_path, "rb") as file:
        key = serialization.load_pem_public_key(file.read())
    if not isinstance(key, Ed25519PublicKey):
        print(f"{key_path} is not an Ed25519 public key")
        return 1
    found = problem(signed, signature_event, key)
    who = signature_event["data"]
    print(found or f"valid: {who['printed_name']}, {who['meaning']}, {who['signed_at']}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
