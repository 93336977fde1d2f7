"""The ledger's settings, read once from the environment (projections and its CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.keys import load_public_keys
from shared.settings import SecuritySettings, SettingsError, seconds, stall_seconds


@dataclass(frozen=True)
class LedgerConfig:
    origin: str | None  # TL_LEDGER_ORIGIN: a new ledger's origin (None: one is made)
    checkpoint_every: int  # TL_CHECKPOINT_EVERY: entries between checkpoints, at most
    checkpoint_interval: float  # TL_CHECKPOINT_INTERVAL_SECONDS: sign a smaller one after
    stall_after: float  # TL_STALL_SECONDS
    checkpoint_keys: list[Ed25519PublicKey]  # the current key first, then rotated ones
    record_keys: list[Ed25519PublicKey]  # TL_RECORD_PUBLIC_KEY_FILE (several: rotation), for
    #                                      exports; none when it is not set

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
        return cls(
            origin=env.get("TL_LEDGER_ORIGIN") or None,
            checkpoint_every=int(every),
            checkpoint_interval=seconds(env, "TL_CHECKPOINT_INTERVAL_SECONDS", 10.0),
            stall_after=stall_seconds(env),
            checkpoint_keys=load_public_keys(public),
            record_keys=load_public_keys(record) if record else [],
        )
