"""Settings read once at start-up from the environment (``TL_*`` variables).

A missing or malformed key fails loudly, naming the key, before anything connects.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from shared.kernel.permissions import SeparationOfDuties


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class DatabaseSettings:
    """Where a service's own PostgreSQL database is."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    schema: str = "public"

    @classmethod
    def from_url(cls, key: str, url: str, schema: str = "public") -> DatabaseSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise SettingsError(f"{key} must be a postgresql:// URL, got scheme {parts.scheme!r}")
        dbname = parts.path.lstrip("/")
        if not (parts.username and parts.password and dbname):
            raise SettingsError(f"{key} must name a user, a password and a database")
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username),
            password=unquote(parts.password),
            dbname=dbname,
            schema=schema,
        )

    @property
    def dsn(self) -> str:
        """A libpq/asyncpg connection string (the password is included: never log it)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def __repr__(self) -> str:  # keeps the password out of logs and tracebacks
        return f"DatabaseSettings({self.user}@{self.host}:{self.port}/{self.dbname}#{self.schema})"


@dataclass(frozen=True)
class ServiceSettings:
    """Everything one service needs to start: its database, Kafka, its topic, its port."""

    service: str
    database: DatabaseSettings
    kafka_bootstrap: str
    topic: str
    topic_partitions: int
    topic_replication: int
    http_host: str
    http_port: int
    # processes serving the port (``shared.web.processes``): a command service's HTTP is
    # bound by one interpreter's CPU; 1, the default, is one process as before
    http_processes: int = 1

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> ServiceSettings:
        """Read the settings of ``service`` (e.g. ``enrollment``) from ``env``."""
        env = dict(os.environ if env is None else env)
        prefix = f"TL_{service.upper()}"
        db_key, schema_key = f"{prefix}_DATABASE_URL", f"{prefix}_DATABASE_SCHEMA"
        schema = env.get(schema_key, "public")
        if not _IDENTIFIER.fullmatch(schema):
            # it is spliced into SQL as an identifier, so only plain names pass
            raise SettingsError(f"setting {schema_key} must be a lower-case SQL identifier")
        return cls(
            service=service,
            database=DatabaseSettings.from_url(db_key, _required(env, db_key), schema),
            kafka_bootstrap=_required(env, "TL_KAFKA_BOOTSTRAP"),
            topic=env.get(f"{prefix}_TOPIC", f"trialledger.{service}.events"),
            topic_partitions=_integer(env, "TL_TOPIC_PARTITIONS", 3),
            topic_replication=_integer(env, "TL_TOPIC_REPLICATION", 1),
            http_host=env.get(f"{prefix}_HTTP_HOST", "127.0.0.1"),
            http_port=_integer(env, f"{prefix}_HTTP_PORT", DEFAULT_PORTS.get(service, 8000)),
            http_processes=_at_least_one(env, f"{prefix}_HTTP_PROCESSES"),
        )


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")

# One port per service, so that `make up` can run them side by side.
DEFAULT_PORTS = {
    "identity": 8100,
    "enrollment": 8101,
    "infusion": 8102,
    "adverse_events": 8103,
    "assessments": 8104,
    "projections": 8105,
}


@dataclass(frozen=True)
class SecuritySettings:
    """Key files and account policy (paths to PEM files kept outside the repository)."""

    token_public_key_file: str
    token_private_key_file: str | None
    record_private_key_file: str | None
    record_public_key_file: str | None
    checkpoint_private_key_file: str | None
    checkpoint_public_key_file: str | None
    token_ttl_seconds: int
    max_failed_attempts: int
    password_max_age_days: int
    signing_idle_seconds: int
    # how long a service may go without confirming that its view of the identity topic
    # is caught up before it refuses every request with an access token (fail closed)
    revocation_max_lag_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SecuritySettings:
        env = dict(os.environ if env is None else env)
        return cls(
            token_public_key_file=_required(env, "TL_TOKEN_PUBLIC_KEY_FILE"),
            token_private_key_file=env.get("TL_TOKEN_PRIVATE_KEY_FILE"),
            record_private_key_file=env.get("TL_RECORD_PRIVATE_KEY_FILE"),
            record_public_key_file=env.get("TL_RECORD_PUBLIC_KEY_FILE"),
            checkpoint_private_key_file=env.get("TL_CHECKPOINT_PRIVATE_KEY_FILE"),
            checkpoint_public_key_file=env.get("TL_CHECKPOINT_PUBLIC_KEY_FILE"),
            token_ttl_seconds=_integer(env, "TL_TOKEN_TTL_SECONDS", 900),
            max_failed_attempts=_integer(env, "TL_MAX_FAILED_ATTEMPTS", 5),
            password_max_age_days=_integer(env, "TL_PASSWORD_MAX_AGE_DAYS", 90),
            signing_idle_seconds=_integer(env, "TL_SIGNING_IDLE_SECONDS", 900),
            revocation_max_lag_seconds=seconds(env, "TL_REVOCATION_MAX_LAG_SECONDS", 10.0),
        )

    def require(self, key: str, value: str | None) -> str:
        if not value:
            raise SettingsError(f"setting {key} is missing (see docs/security.md)")
        return value


@dataclass(frozen=True)
class PasswordCheckSettings:
    """Identity: the threads that hash passwords and the checks that may wait for one; each
    account's and client address's budget of attempts (docs/security.md)."""

    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    queue: int = 64
    attempts_per_account: int = 10
    attempts_per_address: int = 30
    window_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PasswordCheckSettings:
        env, default = dict(os.environ if env is None else env), cls()
        return cls(
            workers=_integer(env, "TL_PASSWORD_WORKERS", default.workers),
            queue=_integer(env, "TL_PASSWORD_QUEUE", default.queue),
            attempts_per_account=_integer(
                env, "TL_ATTEMPTS_PER_ACCOUNT", default.attempts_per_account
            ),
            attempts_per_address=_integer(
                env, "TL_ATTEMPTS_PER_ADDRESS", default.attempts_per_address
            ),
            window_seconds=seconds(env, "TL_ATTEMPTS_WINDOW_SECONDS", default.window_seconds),
        )


def separation_of_duties(env: dict[str, str] | None = None) -> SeparationOfDuties:
    """``TL_INCOMPATIBLE_ROLES``: the role pairs no one may hold together (default
    ``administrator+clinical``; ``none``: no pair), docs/security.md "Separation of duties"."""
    env = dict(os.environ if env is None else env)
    raw = env.get("TL_INCOMPATIBLE_ROLES", "").strip() or SeparationOfDuties.DEFAULT
    try:
        return SeparationOfDuties.parse(raw)
    except ValueError as error:
        raise SettingsError(f"setting TL_INCOMPATIBLE_ROLES: {error}") from None


def stall_seconds(env: dict[str, str] | None = None) -> float:
    """``TL_STALL_SECONDS`` (default 30): how long an event may wait, unpublished or not yet
    in the ledger, before readiness fails and says where."""
    return seconds(dict(os.environ if env is None else env), "TL_STALL_SECONDS", 30.0)


def seconds(env: dict[str, str], key: str, default: float) -> float:
    """A positive number of seconds from ``env[key]``, or ``default`` when unset."""
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"setting {key} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(f"setting {key} must be more than 0 seconds, got {raw!r}")
    return value


def _required(env: dict[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise SettingsError(f"setting {key} is missing (see docs/operations.md)")
    return value


def _at_least_one(env: dict[str, str], key: str) -> int:
    value = _integer(env, key, 1)
    if value < 1:
        raise SettingsError(f"setting {key} must be 1 or more, got {value}")
    return value


def _integer(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"setting {key} must be an integer, got {raw!r}") from None
