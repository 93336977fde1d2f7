"""The console's settings: where identity answers, and whether the cookie is Secure."""

from __future__ import annotations

import pytest

from services.projections.config import ConsoleConfig
from shared.kernel.settings import SettingsError


def test_identity_is_asked_where_verify_asks_it() -> None:
    assert ConsoleConfig.from_env({}).identity_url == "http://127.0.0.1:8100"
    assert ConsoleConfig.from_env({"TL_IDENTITY_HTTP_PORT": "9100"}).identity_url == (
        "http://127.0.0.1:9100"
    )
    named = {"TL_IDENTITY_URL": "http://identity:8100", "TL_IDENTITY_HTTP_PORT": "9100"}
    assert ConsoleConfig.from_env(named).identity_url == "http://identity:8100"


def test_the_session_cookie_is_secure_unless_told_otherwise() -> None:
    assert ConsoleConfig.from_env({}).secure_cookie is True
    assert ConsoleConfig.from_env({"TL_CONSOLE_SECURE_COOKIE": "0"}).secure_cookie is False


def test_a_malformed_cookie_setting_is_refused_naming_it() -> None:
    with pytest.raises(SettingsError, match="TL_CONSOLE_SECURE_COOKIE"):
        ConsoleConfig.from_env({"TL_CONSOLE_SECURE_COOKIE": "yes"})
