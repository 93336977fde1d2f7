"""The witness's settings: a cosignature vkey (type 0x04) only, from the environment or a
file, and the service refuses to start with half of them (no cosignature unchecked); with
them, every study's ledger has a cosigner, named after its study in /ready and metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.projections.__main__ import create_cosigners
from services.projections.config import LedgerConfig, _witness_vkey, witness_verifier
from services.projections.ledger import LedgerStore
from services.projections.notes import COSIGNATURE_V1, Verifier
from shared.kernel.settings import SettingsError
from shared.study import DEFAULT_STUDY_ID

KEY = Ed25519PrivateKey.generate().public_key()
WITNESS_VKEY = Verifier.of("example.org/witness", KEY, COSIGNATURE_V1).vkey()
# the cosigners are only built here: nothing reads their ledgers
LEDGERS: dict[str, LedgerStore] = {DEFAULT_STUDY_ID: None, "SYN-CART-2": None}  # type: ignore[dict-item]


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
        create_cosigners(config(url, vkey), LEDGERS)


def test_no_witness_runs_no_cosigner() -> None:
    assert create_cosigners(config(None, None), LEDGERS) == []


async def test_each_studys_ledger_has_a_cosigner_named_after_its_study() -> None:
    """The first study's check and metric labels are those it had before studies were
    named; another study's name it."""
    cosigners = create_cosigners(config("http://127.0.0.1:7380", WITNESS_VKEY), LEDGERS)
    assert [c.ledger for c in cosigners] == list(LEDGERS.values())
    assert [await c.problems() for c in cosigners] == [
        {"witness": "ok"}, {"witness:SYN-CART-2": "ok"}]  # fmt: skip
    name = cosigners[0].witness.name
    readings = [(await c.readings(None)).witness_failing for c in cosigners]  # type: ignore[arg-type]
    assert readings == [{(name, ""): 0}, {(name, "SYN-CART-2"): 0}]
