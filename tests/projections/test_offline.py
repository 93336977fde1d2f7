"""Offline verification of an export (``services.projections.offline``), with no I/O: a clean
export verifies, and each kind of tampering is named with its position."""

from __future__ import annotations

import base64
import copy
import json
import struct
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.projections import merkle
from services.projections.domain import entry_leaf
from services.projections.notes import (
    COSIGNATURE_V1,
    DASH,
    Verifier,
    cosigned,
    sign_checkpoint_note,
    split_note,
)
from services.projections.offline import (
    FORMAT_V2,
    KINDS,
    TrustedKeys,
    build_export,
    same_json,
    verify_export,
)
from tests.projections.conftest import published_events
from tests.support import RECORD_KEY

ORIGIN = "trial-ledger.local/ledger/offline-test"
LOG_KEY = Ed25519PrivateKey.generate()
WITNESS_KEY = Ed25519PrivateKey.generate()
LOG = Verifier.of(ORIGIN, LOG_KEY.public_key())
WITNESS = Verifier.of("witness.example/w1", WITNESS_KEY.public_key(), COSIGNATURE_V1)
COSIGNED_AT = 1_796_000_000
TRUSTED = TrustedKeys(checkpoint=[LOG], witnesses=[WITNESS], record=[RECORD_KEY.public_key()])
Export = dict[str, Any]


def cosignature_line(note: str, key: Ed25519PrivateKey = WITNESS_KEY) -> str:
    """The witness's cosignature of ``note`` (c2sp.org/tlog-cosignature, Ed25519)."""
    text, _ = split_note(note)
    signed = key.sign(f"cosignature/v1\ntime {COSIGNED_AT}\n{text}".encode())
    body = WITNESS.key_id + struct.pack(">Q", COSIGNED_AT) + signed
    return f"{DASH} {WITNESS.name} {base64.b64encode(body).decode()}\n"


@cache
def ledger() -> tuple[tuple[bytes, ...], str]:
    """Two subjects' enrollment as published, and a cosigned checkpoint of all of it."""
    payloads = tuple(event.to_kafka_value() for event in published_events(subjects=2))
    leaves = [entry_leaf(n, payload) for n, payload in enumerate(payloads, 1)]
    note = sign_checkpoint_note(ORIGIN, len(leaves), merkle.root(leaves), LOG_KEY)
    return payloads, cosigned(note, [cosignature_line(note)])


def export(subject: str | None = None) -> Export:
    payloads, note = ledger()
    leaves = [entry_leaf(n, payload) for n, payload in enumerate(payloads, 1)]
    entries = [
        (n, payload)
        for n, payload in enumerate(payloads, 1)
        if subject is None or json.loads(payload).get("subject") == subject
    ]
    return build_export(
        note,
        leaves,
        entries,
        subject_id=subject,
        checkpoint_keys=[LOG],
        record_keys=[RECORD_KEY.public_key()],
        witnesses=[WITNESS],
    )


def found(document: Export, trusted: TrustedKeys = TRUSTED) -> set[tuple[int | None, str]]:
    return {(f.position, f.kind) for f in verify_export(document, trusted).failures}


def position_of(document: Export, event_type: str, nth: int = 0) -> int:
    positions = [e["position"] for e in document["entries"] if e["event"]["type"] == event_type]
    return int(positions[nth])


def entry_at(document: Export, position: int) -> dict[str, Any]:
    return next(e for e in document["entries"] if e["position"] == position)


# --- clean exports -------------------------------------------------------------------------


@pytest.mark.part11("11.10(b)")
def test_a_clean_full_export_verifies_every_proof_signature_and_cosignature() -> None:
    report = verify_export(export(), TRUSTED)
    assert report.ok, report.failures
    size = len(ledger()[0])
    assert (report.scope, report.size, report.proofs_verified) == ("full", size, size)
    assert report.record_signatures_verified == 4  # consent and eligibility, two subjects
    assert report.signed_by == [f"{ORIGIN}+{LOG.key_id.hex()}"]
    assert report.cosigned_by == [f"witness.example/w1 at {COSIGNED_AT}"]
    assert report.notes == []


@pytest.mark.part11("11.10(b)")
def test_a_subject_export_verifies_and_says_what_it_does_not_prove() -> None:
    document = export("S-002")
    report = verify_export(document, TRUSTED)
    assert report.ok, report.failures
    assert {e["event"]["subject"] for e in document["entries"]} == {"S-002"}
    assert report.proofs_verified == len(document["entries"]) < report.size
    assert report.record_signatures_verified == 2
    assert any("does not show that every entry of 'S-002' is here" in n for n in report.notes)


def test_keys_not_given_are_taken_from_the_export_and_the_report_says_so() -> None:
    report = verify_export(export(), TrustedKeys())
    assert report.ok, report.failures
    assert report.record_signatures_verified == 4 and report.cosigned_by
    said = " ".join(report.notes)
    assert "checkpoint keys: only the export's own" in said
    assert "record keys: only the export's own" in said
    assert "witness keys: only the export's own" in said


# --- one case per kind of tampering --------------------------------------------------------


def alter_payload(document: Export) -> set[tuple[int | None, str]]:
    here = position_of(document, "ScreeningResultRecorded.v1")
    entry = entry_at(document, here)
    entry["payload"] = entry["payload"].replace('"S-001"', '"S-009"', 1)
    return {(here, "inclusion"), (here, "event_copy")}


def alter_proof(document: Export) -> set[tuple[int | None, str]]:
    entry = document["entries"][6]
    first = entry["inclusion_proof"][0]
    entry["inclusion_proof"][0] = ("1" if first[0] == "0" else "0") + first[1:]
    return {(7, "inclusion")}


def alter_root_copy(document: Export) -> set[tuple[int | None, str]]:
    root = document["checkpoint"]["root"]
    document["checkpoint"]["root"] = ("1" if root[0] == "0" else "0") + root[1:]
    return {(None, "checkpoint_copy")}


def alter_signed_root(document: Export) -> set[tuple[int | None, str]]:
    """The root in the note and its copy both changed: the log's signature and the
    witness's cosignature fail, and no entry is proven in that root."""
    note, root = document["checkpoint"]["note"], bytes.fromhex(document["checkpoint"]["root"])
    forged = bytes([root[0] ^ 1]) + root[1:]
    document["checkpoint"]["note"] = note.replace(
        base64.b64encode(root).decode(), base64.b64encode(forged).decode()
    )
    document["checkpoint"]["root"] = forged.hex()
    positions = range(1, document["checkpoint"]["size"] + 1)
    return {(None, "checkpoint"), (None, "cosignature"), *((n, "inclusion") for n in positions)}


def flip_note_signature(document: Export, index: int) -> None:
    """The last bit of the checkpoint note's ``index``-th signature line flipped (0: the
    log's own signature, 1: the witness's cosignature)."""
    note = document["checkpoint"]["note"]
    line = split_note(note)[1][index]
    forged = line.signature[:-1] + bytes([line.signature[-1] ^ 1])
    document["checkpoint"]["note"] = note.replace(
        line.line(), type(line)(line.name, line.key_id, forged).line()
    )


def alter_log_signature(document: Export) -> set[tuple[int | None, str]]:
    flip_note_signature(document, 0)
    return {(None, "checkpoint")}


def remove_entry(document: Export) -> set[tuple[int | None, str]]:
    here = position_of(document, "ValueCorrected.v1")
    document["entries"].remove(entry_at(document, here))
    return {(here, "missing")}


def swap_entries(document: Export) -> set[tuple[int | None, str]]:
    """Two neighbours' contents exchanged, positions and proofs left in place."""
    here = position_of(document, "ScreeningResultRecorded.v1")
    first, second = entry_at(document, here), entry_at(document, here + 1)
    for member in ("payload", "event"):
        first[member], second[member] = second[member], first[member]
    return {(here, "reordered"), (here + 1, "reordered")}


def alter_event_copy(document: Export) -> set[tuple[int | None, str]]:
    here = position_of(document, "SubjectEnrolled.v1")
    entry_at(document, here)["event"]["data"]["dose_level"] = 4
    return {(here, "event_copy")}


def alter_record_signature(document: Export) -> set[tuple[int | None, str]]:
    """The signature's value changed in the payload and in its copy alike."""
    here = position_of(document, "RecordSigned.v2", 1)
    entry = entry_at(document, here)
    value = entry["event"]["data"]["value"]
    forged = base64.b64encode(bytes([base64.b64decode(value)[0] ^ 1]) + base64.b64decode(value)[1:])
    entry["payload"] = entry["payload"].replace(value, forged.decode())
    entry["event"]["data"]["value"] = forged.decode()
    return {(here, "inclusion"), (here, "record_signature")}


def alter_cosignature(document: Export) -> set[tuple[int | None, str]]:
    flip_note_signature(document, 1)
    return {(None, "cosignature")}


def drop_cosignature(document: Export) -> set[tuple[int | None, str]]:
    note = document["checkpoint"]["note"]
    document["checkpoint"]["note"] = note.replace(split_note(note)[1][1].line(), "")
    return {(None, "cosignature_missing")}


def duplicate_entry(document: Export) -> set[tuple[int | None, str]]:
    document["entries"].insert(3, copy.deepcopy(document["entries"][3]))
    return {(4, "duplicate")}


def unsort_entries(document: Export) -> set[tuple[int | None, str]]:
    entries = document["entries"]
    entries[2], entries[3] = entries[3], entries[2]
    return {(3, "out_of_order")}


def move_out_of_range(document: Export) -> set[tuple[int | None, str]]:
    last = document["entries"][-1]
    last["position"] = document["checkpoint"]["size"] + 1
    return {(last["position"], "out_of_range"), (last["position"] - 1, "missing")}


TAMPERING: dict[str, Callable[[Export], set[tuple[int | None, str]]]] = {
    "payload byte": alter_payload,
    "proof byte": alter_proof,
    "root byte (the copy)": alter_root_copy,
    "root byte (signed)": alter_signed_root,
    "signature byte": alter_log_signature,
    "entry removed": remove_entry,
    "entries swapped": swap_entries,
    "event copy altered": alter_event_copy,
    "record signature altered": alter_record_signature,
    "cosignature altered": alter_cosignature,
    "cosignature removed": drop_cosignature,
    "entry duplicated": duplicate_entry,
    "entries out of order": unsort_entries,
    "position beyond the checkpoint": move_out_of_range,
}


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
@pytest.mark.part11("11.10(a)")
def test_each_kind_of_tampering_is_named_with_its_position(
    tamper: Callable[[Export], set[tuple[int | None, str]]],
) -> None:
    document = export()
    expected = tamper(document)
    assert found(document) == expected


def test_every_failure_line_names_its_position_and_kind() -> None:
    document = export()
    alter_payload(document)
    lines = [f.line() for f in verify_export(document, TRUSTED).failures]
    here = position_of(document, "ScreeningResultRecorded.v1")
    assert lines[0].startswith(f"position {here}: inclusion: ")
    assert lines[1].startswith(
        f"position {here}: event_copy: the event copy differs from the payload: .subject"
    )


@pytest.mark.part11("11.70")
def test_a_record_signature_is_checked_against_the_payload_not_the_copy() -> None:
    document = export()
    here = position_of(document, "ConsentSigned.v1")
    entry_at(document, here)["event"]["data"]["form_version"] = "ICF v9"
    assert found(document) == {(here, "event_copy")}  # the signature still holds


def test_record_signatures_by_a_key_not_trusted_are_named() -> None:
    stranger = TrustedKeys(checkpoint=[LOG], record=[Ed25519PrivateKey.generate().public_key()])
    document = export()
    signatures = {
        e["position"] for e in document["entries"] if e["event"]["type"] == "RecordSigned.v2"
    }
    assert found(document, stranger) == {(n, "record_key") for n in signatures}


@pytest.mark.part11("11.50")
def test_a_subject_export_missing_a_signed_event_names_the_signature() -> None:
    document = export("S-001")
    signed = position_of(document, "EligibilityConfirmed.v1")
    document["entries"].remove(entry_at(document, signed))
    signature = position_of(document, "RecordSigned.v2", 1)
    assert found(document) == {(signature, "signed_event_missing")}


def test_a_subject_export_holding_another_subjects_entry_fails() -> None:
    document = export("S-001")
    other = next(e for e in export()["entries"] if e["event"]["subject"] == "S-002")
    document["entries"].append(other)
    assert found(document) == {(other["position"], "scope")}


def test_a_subject_export_is_refused_where_a_full_one_is_asked_for() -> None:
    full = TrustedKeys(checkpoint=[LOG], record=[RECORD_KEY.public_key()], full=True)
    assert found(export("S-001"), full) == {(None, "scope")}
    assert found(export(), full) == set()


def test_a_checkpoint_key_of_another_ledger_or_origin_fails() -> None:
    other_key = TrustedKeys(
        checkpoint=[Verifier.of(ORIGIN, Ed25519PrivateKey.generate().public_key())]
    )
    assert found(export(), other_key) == {(None, "checkpoint")}
    other_origin = TrustedKeys(checkpoint_keys=[LOG_KEY.public_key()], origin="elsewhere/ledger")
    assert found(export(), other_origin) == {(None, "checkpoint")}
    bare_key = TrustedKeys(checkpoint_keys=[LOG_KEY.public_key()], origin=ORIGIN)
    assert found(export(), bare_key) == set()


def test_a_payload_that_parsers_could_read_differently_is_refused() -> None:
    document = export()
    entry = document["entries"][0]
    entry["payload"] = entry["payload"][:-1] + ',"type":"Other.v1"}'
    assert found(document) == {(1, "inclusion"), (1, "payload")}


# --- other formats, malformed documents ----------------------------------------------------


def as_v2(document: Export) -> Export:
    """The same export as format v2 wrote it (no scope, no record keys)."""
    checkpoint = document["checkpoint"]
    return {
        "format": FORMAT_V2,
        "origin": document["origin"],
        "vkeys": document["keys"]["checkpoint"],
        "checkpoint": {
            **checkpoint,
            "signed_at": "2026-12-02T15:00:00+00:00",
            "key_id": "x",
            "signature": "",
        },
        "entries": document["entries"],
    }


def test_a_v2_export_is_still_read_and_its_missing_scope_is_said() -> None:
    v2 = as_v2(export())
    trusted = TrustedKeys(checkpoint=[LOG], record=[RECORD_KEY.public_key()])
    report = verify_export(v2, trusted)
    assert report.ok and report.scope == "full (format v2: every position 1..size)"
    del v2["entries"][4]
    report = verify_export(v2, trusted)
    assert report.ok and "format v2 states no scope" in " ".join(report.notes)
    asked = TrustedKeys(checkpoint=[LOG], record=[RECORD_KEY.public_key()], full=True)
    assert found(v2, asked) == {(5, "missing")}


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"format": "trial-ledger-export/v1"},
        {"format": "trial-ledger-export/v3"},
        {**export(), "scope": "half"},
        {**export(), "subject_id": "S-001"},
        {**export(), "checkpoint": {"size": 1}},
        {**export(), "entries": [{"position": "1"}]},
        {**export(), "entries": [{"position": 1, "payload": "{}", "inclusion_proof": ["zz"]}]},
        {**export(), "entries": [None, {"position": True}]},
        {**export(), "keys": {"checkpoint": "not a list", "record": ["not base64!"]}},
    ],
)
def test_a_malformed_export_is_a_format_failure_never_an_exception(document: Any) -> None:
    report = verify_export(document, TRUSTED)
    assert "format" in {f.kind for f in report.failures}
    assert set(f.kind for f in report.failures) <= set(KINDS)


def test_json_values_are_compared_by_type_and_value() -> None:
    assert same_json({"a": [1, "x", None]}, {"a": [1.0, "x", None]})
    assert not same_json(True, 1) and not same_json(0, False) and not same_json(None, 0)
    assert not same_json({"a": 1}, {"a": 1, "b": 1}) and not same_json([1, 2], [2, 1])
