"""The witness's settings: a cosignature vkey (type 0x04) only, from the environment or a
file, and the service refuses to start with half of them (no cosignature unchecked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.projections.__main__ import create_cosigner
from services.projections.config import LedgerConfig, _witness_vkey, witness_verifier
from services.projections.notes import COSIGNATURE_V1, Verifier
from shared.kernel.settings import SettingsError

KEY = Ed25519PrivateKey.generate().public_key()
WITNESS_VKEY = Verifier.of("example.org/witness", KEY, COSIGNATURE_V1).vkey()


def config(url: str | None, vkey: str | None) -> LedgerConfig:
    verifier = None if vkey is None else witness_verifier(vkey)
    return LedgerConfig(None, 100, 10.0, 30.0, [KEY], [], url, verifier)


def test_a_log_key_is_not_taken_for_a_witness_key() -> None:
    with pytest.raises(SettingsError, match="a cosignature/v1 key is needed"):
        witness_verifier(Verifier.of("example.org/log", KEY).vkey())


def test_the_vkey_may_come_from_the_file_a_witness_published(tmp_path: Path) -> None:
    (tmp_path / "witness.vkey").write_text(WITNESS_VKEY + "\n")
    assert _witness_vkey({"TL_WITNESS_VKEY_FILE": str(tmp_path / "witness.vkey")}) == WITNESS_VKEY


def test_a_missing_vkey_file_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TL_WITNESS_VKEY_FILE"):
        _witness_vkey({"TL_WITNESS_VKEY_FILE": str(tmp_path / "absent")})


@pytest.mark.parametrize(("url", "vkey"), [("http://127.0.0.1:7380", None), (None, WITNESS_VKEY)])
def test_the_service_refuses_half_a_witness(url: str | None, vkey: str | None) -> None:
    with pytest.raises(SettingsError, match="go together"):
        create_cosigner(config(url, vkey), ledger=None)  # type: ignore[arg-type]


def test_no_witness_runs_no_cosigner() -> None:
    assert create_cosigner(config(None, None), ledger=None) is None  # type: ignore[arg-type]
