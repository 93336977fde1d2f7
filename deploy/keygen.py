"""The compose stack's `keys` job: Ed25519 key pairs, made once, each private key apart.

    python keygen.py ROOT

For each pair of ``shared.kernel.keys.PAIRS`` (token, record, checkpoint):
- ``ROOT/<pair>/<pair>.key`` (0600) and ``.pub``: made only if missing. Each
  ``ROOT/<pair>`` is a volume of its own, mounted only into the services that sign with
  that key, so that (for one) the token-signing key lives in the identity service alone;
- ``ROOT/public/<pair>.pub``: the public half, derived from the private key, in the one
  volume that every service mounts. When a private key was replaced (rotation), the old
  public key is kept beside it as ``<pair>-<key_id>.pub``: signatures name the key id
  that checks them, and old ones stay verifiable only while that key is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from shared.kernel.keys import PAIRS, ensure_pair, key_id, load_private_key, load_public_key


def public_pem(private: Path) -> bytes:
    return (
        load_private_key(private)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def publish(name: str, private: Path, public_dir: Path) -> str:
    """Put the public half of ``private`` in ``public_dir``; archive a replaced one."""
    current, pem = public_dir / f"{name}.pub", public_pem(private)
    if current.exists() and current.read_bytes() != pem:
        old_id = key_id(load_public_key(current))
        current.replace(public_dir / f"{name}-{old_id}.pub")
    if not current.exists():
        current.write_bytes(pem)
    return key_id(load_public_key(current))


def main(root: Path) -> None:
    public_dir = root / "public"
    public_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in PAIRS:
        folder = root / name
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private, _ = ensure_pair(folder, name)
        print(f"{name}: key_id={publish(name, private, public_dir)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
