"""C2SP signed notes, checkpoints and cosignatures, against the specifications' examples
and our own keys (no I/O)."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.projections.notes import (
    COSIGNATURE_V1,
    DASH,
    CheckpointText,
    NoteError,
    Verifier,
    cosigned,
    open_note,
    sign_checkpoint_note,
    sign_note,
    split_note,
)

# c2sp.org/signed-note@v1.0.0, "Example": this verifier key verifies this note.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    f"{DASH} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3"
    "mFXmRKuwHjG1Yu72IneyaQM=\n"
)
ORIGIN = "trial-ledger.local/ledger/0123456789abcdef"
LOG_KEY = Ed25519PrivateKey.generate()
ROOT = bytes(range(32))


def test_the_specifications_example_note_verifies_with_its_vkey() -> None:
    verifier = Verifier.parse(SPEC_VKEY)
    text, signers = open_note(SPEC_NOTE, [verifier])
    assert text == "This is an example message.\n" and signers == [verifier]
    assert verifier.vkey() == SPEC_VKEY


def test_a_changed_text_fails_and_an_unknown_key_is_not_enough() -> None:
    with pytest.raises(NoteError, match="does not verify"):
        open_note(SPEC_NOTE.replace("example message", "exemple message"),
                  [Verifier.parse(SPEC_VKEY)])  # fmt: skip
    stranger = Verifier.of("example.com/foo", Ed25519PrivateKey.generate().public_key())
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(SPEC_NOTE, [stranger])  # same name, another key ID: ignored


def test_a_checkpoint_is_origin_size_and_base64_root_signed_under_the_origin() -> None:
    note = sign_checkpoint_note(ORIGIN, 42, ROOT, LOG_KEY)
    text, lines = split_note(note)
    assert text == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"
    assert [line.name for line in lines] == [ORIGIN]
    verifier = Verifier.of(ORIGIN, LOG_KEY.public_key())
    assert CheckpointText.parse(open_note(note, [verifier])[0]) == CheckpointText(ORIGIN, 42, ROOT)
    assert Verifier.parse(verifier.vkey()) == verifier


@pytest.mark.parametrize(
    "text",
    [f"{ORIGIN}\n042\nAAAA\n", f"{ORIGIN}\n42\nnot base64!\n", f"{ORIGIN}\n42\n", "a\n\n1\n"],
)
def test_a_malformed_checkpoint_is_refused(text: str) -> None:
    with pytest.raises(NoteError):
        CheckpointText.parse(text)


def test_a_witness_cosignature_is_timestamped_and_signs_the_checkpoint_text() -> None:
    witness = Ed25519PrivateKey.generate()
    note = sign_checkpoint_note(ORIGIN, 7, ROOT, LOG_KEY)
    text, _ = split_note(note)
    timestamp = 1_796_000_000
    signature = witness.sign(f"cosignature/v1\ntime {timestamp}\n{text}".encode())
    name = "witness.local/w1"
    verifier = Verifier.of(name, witness.public_key(), COSIGNATURE_V1)

    def line(claimed_time: int) -> str:
        body = verifier.key_id + struct.pack(">Q", claimed_time) + signature
        return f"{DASH} {name} {base64.b64encode(body).decode()}"

    log = Verifier.of(ORIGIN, LOG_KEY.public_key())
    assert open_note(cosigned(note, [line(timestamp)]), [log, verifier])[1] == [log, verifier]
    with pytest.raises(NoteError):  # another time than the one signed
        open_note(cosigned(note, [line(timestamp + 1)]), [log, verifier])


def test_signing_refuses_text_a_note_cannot_carry() -> None:
    with pytest.raises(NoteError):
        sign_note("no final newline", ORIGIN, LOG_KEY)
    with pytest.raises(NoteError):
        Verifier.of("two words", LOG_KEY.public_key())
