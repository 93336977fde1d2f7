"""Settings fail loudly, naming the key, and never print the password."""

from __future__ import annotations

import pytest

from shared.kernel.settings import ServiceSettings, SettingsError

GOOD = {
    "TL_ENROLLMENT_DATABASE_URL": "postgresql://ledger:s3cret@127.0.0.1:5544/enrollment",
    "TL_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
}


def test_reads_a_service_settings() -> None:
    settings = ServiceSettings.from_env("enrollment", GOOD)
    assert (settings.database.port, settings.database.dbname) == (5544, "enrollment")
    assert settings.topic == "trialledger.enrollment.events"
    assert settings.http_port == 8101


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_missing_key_is_named(missing: str) -> None:
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        ServiceSettings.from_env("enrollment", env)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TL_ENROLLMENT_DATABASE_URL", "mysql://a:b@h/db"),
        ("TL_ENROLLMENT_DATABASE_URL", "postgresql://nobody@h/db"),
        ("TL_ENROLLMENT_DATABASE_SCHEMA", 'x"; DROP TABLE y; --'),
        ("TL_ENROLLMENT_HTTP_PORT", "eighty"),
        ("TL_ENROLLMENT_HTTP_PROCESSES", "0"),
        ("TL_ENROLLMENT_HTTP_PROCESSES", "two"),
    ],
)
def test_malformed_key_is_named(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=key):
        ServiceSettings.from_env("enrollment", {**GOOD, key: value})


def test_password_stays_out_of_repr() -> None:
    settings = ServiceSettings.from_env("enrollment", GOOD)
    assert "s3cret" not in repr(settings)
