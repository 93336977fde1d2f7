"""The security guide's standalone signature verifier, run as it is printed, on the
scheme's test vector: it needs nothing from this repository but the published events."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.contracts.examples import ROOT, printed_in

EXAMPLE = ROOT / "docs/examples/verify_signature.py"
GUIDE = ROOT / "docs/security.md"
VECTOR = json.loads((ROOT / "docs/examples/record-signature-v2.json").read_text("utf-8"))


def test_the_guide_prints_the_example_file_as_it_is() -> None:
    assert printed_in(GUIDE, EXAMPLE) == EXAMPLE.read_text()


def run(tmp_path: Path, signed: dict[str, Any], signature: dict[str, Any]) -> tuple[int, str]:
    """The example in an isolated interpreter (-I: no PYTHONPATH, nor this checkout on its
    path), on the events written as files and the vector's public key as PEM."""
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(VECTOR["test_key"]["public_key_hex"]))
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    files = [tmp_path / "signed.json", tmp_path / "signature.json", tmp_path / "record.pub"]
    files[0].write_text(json.dumps(signed, ensure_ascii=False), "utf-8")
    files[1].write_text(json.dumps(signature), "utf-8")
    files[2].write_bytes(pem)
    done = subprocess.run(  # noqa: S603 (our interpreter, our file)
        [sys.executable, "-I", str(EXAMPLE), *map(str, files)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout.strip()


def test_the_example_verifies_the_vector(tmp_path: Path) -> None:
    code, printed = run(tmp_path, VECTOR["signed_event"], VECTOR["signature_event"])
    assert (code, printed) == (0, "valid: 林伟 Lin Wei, approval, 2026-11-20T09:30:15.250000Z")


def test_the_example_refuses_altered_data(tmp_path: Path) -> None:
    altered = copy.deepcopy(VECTOR["signed_event"])
    altered["data"]["criteria"][2]["value"] = "52"  # "52.000" as text was signed
    code, printed = run(tmp_path, altered, VECTOR["signature_event"])
    assert code == 1 and "does not verify" in printed
