"""deploy/keygen.py: the key pairs of a compose deployment, each private key apart."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shared.kernel.keys import PAIRS, key_id, load_private_key, load_public_key
from tests.deploy.files import DEPLOY, ROOT, run


def keygen(root: Path) -> str:
    result = run(
        [sys.executable, str(DEPLOY / "keygen.py"), str(root)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_each_private_key_is_alone_in_its_folder_and_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    keygen(tmp_path)
    for name in PAIRS:
        private = tmp_path / name / f"{name}.key"
        assert private.stat().st_mode & 0o777 == 0o600
        assert not [p for p in (tmp_path / name).iterdir() if p.suffix == ".key" and p != private]
    assert not list((tmp_path / "public").glob("*.key"))


def test_the_public_folder_holds_the_public_half_of_each_private_key(tmp_path: Path) -> None:
    printed = keygen(tmp_path)
    for name in PAIRS:
        private = load_private_key(tmp_path / name / f"{name}.key")
        public = load_public_key(tmp_path / "public" / f"{name}.pub")
        assert key_id(public) == key_id(private.public_key())
        assert f"{name}: key_id={key_id(public)}" in printed


def test_a_second_run_keeps_every_key(tmp_path: Path) -> None:
    keygen(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    keygen(tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_replaced_key_is_published_and_the_old_public_key_kept(tmp_path: Path) -> None:
    keygen(tmp_path)
    old = load_public_key(tmp_path / "public" / "record.pub")
    (tmp_path / "record" / "record.key").unlink()
    (tmp_path / "record" / "record.pub").unlink()
    keygen(tmp_path)
    new_private = load_private_key(tmp_path / "record" / "record.key")
    assert key_id(load_public_key(tmp_path / "public" / "record.pub")) == key_id(
        new_private.public_key()
    )
    archived = load_public_key(tmp_path / "public" / f"record-{key_id(old)}.pub")
    assert key_id(archived) == key_id(old) != key_id(new_private.public_key())
