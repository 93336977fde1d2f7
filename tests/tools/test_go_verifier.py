"""The second implementation: the Go verifier (``tools/verify``, on x/mod's ``note`` and
``tlog``, ``crypto/ed25519`` and a Go RFC 8785 library) agrees with the Python one on a clean
export and on every kind of tampering, failure for failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from tests import go_verifier
from tests.projections.test_offline import LOG, TAMPERING, WITNESS, export
from tests.support import RECORD_KEY


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_verifier.build(tmp_path_factory.mktemp("go"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    record = tmp_path_factory.mktemp("keys") / "record.pub"
    record.write_bytes(
        RECORD_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ["-vkey", LOG.vkey(), "-witness", WITNESS.vkey(), "-record-key", str(record)]


def written(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document, indent=1))
    return path


def test_a_clean_export_verifies_in_go(verifier: Path, keys: list[str], tmp_path: Path) -> None:
    verdict = go_verifier.run(verifier, written(tmp_path, export()), *keys)
    assert verdict.returncode == 0, verdict.stdout
    assert "record signatures verified: 4" in verdict.stdout
    assert "cosigned by witness.example/w1" in verdict.stdout
    assert verdict.stdout.splitlines()[-1] == "verify: OK"


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_go_names_each_kind_of_tampering_as_python_does(
    tamper: Callable[[dict[str, Any]], set[tuple[int | None, str]]],
    verifier: Path,
    keys: list[str],
    tmp_path: Path,
) -> None:
    document = export()
    expected = tamper(document)
    verdict = go_verifier.run(verifier, written(tmp_path, document), *keys)
    assert verdict.returncode == 1
    assert verdict.failures == expected, verdict.stdout


def test_a_subject_export_verifies_in_go_and_a_full_one_is_demanded_on_request(
    verifier: Path, keys: list[str], tmp_path: Path
) -> None:
    path = written(tmp_path, export("S-002"))
    assert go_verifier.run(verifier, path, *keys).returncode == 0
    assert go_verifier.run(verifier, path, *keys, "-full").failures == {(None, "scope")}
