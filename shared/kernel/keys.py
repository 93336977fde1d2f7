"""Ed25519 key pairs of a deployment, kept as PEM files outside the repository.

Three pairs: ``token`` (the identity authority signs access tokens and signing
assertions; every service verifies them), ``record`` (command services sign the
records of signed steps; auditors verify them) and ``checkpoint`` (the projections
service signs ledger checkpoints; auditors and outside witnesses verify them).

    python -m shared.kernel.keys DIR   # create missing pairs in DIR, print their settings
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.kernel.settings import SettingsError

PAIRS = ("token", "record", "checkpoint")


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_read(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(_read(path))
    if not isinstance(key, Ed25519PublicKey):
        raise SettingsError(f"{path} is not an Ed25519 public key")
    return key


def load_public_keys(paths: str) -> list[Ed25519PublicKey]:
    """The keys of a comma-separated list of PEM files (the current key first, then keys
    rotated out, whose old signatures must still verify)."""
    keys = [load_public_key(path.strip()) for path in paths.split(",") if path.strip()]
    if not keys:
        raise SettingsError("no public key file given")
    return keys


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key, recorded beside every signature it checks."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def ensure_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """Create ``<name>.key`` (0600) and ``<name>.pub`` in ``directory`` unless present."""
    private, public = directory / f"{name}.key", directory / f"{name}.pub"
    if not private.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
    if not public.exists():
        public_pem = (
            load_private_key(private)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        public.write_bytes(public_pem)
    return private, public


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SettingsError(f"cannot read key file {path}: {error.strerror}") from None


def main(directory: str) -> None:
    folder = Path(directory).resolve()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in PAIRS:
        private, public = ensure_pair(folder, name)
        print(f"export TL_{name.upper()}_PRIVATE_KEY_FILE={private}")
        print(f"export TL_{name.upper()}_PUBLIC_KEY_FILE={public}")


if __name__ == "__main__":
    main(sys.argv[1])
