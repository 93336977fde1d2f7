"""The ledger's settings, read once from the environment (projections and its CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.projections.notes import COSIGNATURE_V1, NoteError, Verifier
from services.projections.stores import service_url
from shared.kernel.keys import load_public_keys
from shared.kernel.settings import SecuritySettings, SettingsError, seconds, stall_seconds


@dataclass(frozen=True)
class LedgerConfig:
    origin: str | None  # TL_LEDGER_ORIGIN: a new ledger's origin (None: one is made)
    checkpoint_every: int  # TL_CHECKPOINT_EVERY: entries between checkpoints, at most
    checkpoint_interval: float  # TL_CHECKPOINT_INTERVAL_SECONDS: sign a smaller one after
    stall_after: float  # TL_STALL_SECONDS
    checkpoint_keys: list[Ed25519PublicKey]  # the current key first, then rotated ones
    record_keys: list[Ed25519PublicKey]  # TL_RECORD_PUBLIC_KEY_FILE (several: rotation), for
    #                                      exports; none when it is not set
    witness_url: str | None = None  # TL_WITNESS_URL: a tlog-witness that cosigns checkpoints
    witness: Verifier | None = None  # TL_WITNESS_VKEY: its cosignature verifier key
    witness_interval: float = 2.0  # TL_WITNESS_INTERVAL_SECONDS: how often it is asked

    @classmethod
    def from_env(
        cls, security: SecuritySettings, env: dict[str, str] | None = None
    ) -> LedgerConfig:
        env = dict(os.environ if env is None else env)
        every = env.get("TL_CHECKPOINT_EVERY", "100")
        if not every.isdigit() or int(every) < 1:
            raise SettingsError(
                f"setting TL_CHECKPOINT_EVERY must be a whole number >= 1, got {every!r}"
            )
        public = security.require(
            "TL_CHECKPOINT_PUBLIC_KEY_FILE", security.checkpoint_public_key_file
        )
        record = security.record_public_key_file
        url, vkey = env.get("TL_WITNESS_URL") or None, _witness_vkey(env)
        return cls(
            origin=env.get("TL_LEDGER_ORIGIN") or None,
            checkpoint_every=int(every),
            checkpoint_interval=seconds(env, "TL_CHECKPOINT_INTERVAL_SECONDS", 10.0),
            stall_after=stall_seconds(env),
            checkpoint_keys=load_public_keys(public),
            record_keys=load_public_keys(record) if record else [],
            witness_url=url,
            witness=None if vkey is None else witness_verifier(vkey),
            witness_interval=seconds(env, "TL_WITNESS_INTERVAL_SECONDS", 2.0),
        )


def _witness_vkey(env: dict[str, str]) -> str | None:
    """``TL_WITNESS_VKEY``, or the first line of ``TL_WITNESS_VKEY_FILE`` (where a witness
    made its key at its first start and published the vkey: docker compose)."""
    file = env.get("TL_WITNESS_VKEY_FILE")
    if env.get("TL_WITNESS_VKEY") or not file:
        return env.get("TL_WITNESS_VKEY") or None
    try:
        return Path(file).read_text().strip().splitlines()[0]
    except (OSError, IndexError) as error:
        raise SettingsError(f"TL_WITNESS_VKEY_FILE {file!r}: {error or 'empty'}") from None


def witness_verifier(vkey: str, setting: str = "TL_WITNESS_VKEY") -> Verifier:
    """A witness's cosignature vkey (c2sp.org/tlog-cosignature, type 0x04); errors name
    ``setting``, where it came from."""
    try:
        return Verifier.parse_kind(vkey, COSIGNATURE_V1)
    except NoteError as error:
        raise SettingsError(f"{setting}: {error} (a cosignature/v1 key is needed)") from None


@dataclass(frozen=True)
class ConsoleConfig:
    """The auditor's console (``services.projections.console``)."""

    identity_url: str  # TL_IDENTITY_URL: where the console logs auditors in
    secure_cookie: bool = True  # TL_CONSOLE_SECURE_COOKIE: 0 only behind no TLS and no
    #                             localhost (browsers keep Secure cookies of 127.0.0.1)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ConsoleConfig:
        env = dict(os.environ if env is None else env)
        secure = env.get("TL_CONSOLE_SECURE_COOKIE", "1")
        if secure not in ("0", "1"):
            raise SettingsError(f"setting TL_CONSOLE_SECURE_COOKIE must be 0 or 1, got {secure!r}")
        return cls(identity_url=service_url("identity", env), secure_cookie=secure == "1")
