"""The demo's command line: where it finds the services."""

from __future__ import annotations

import pytest
import typer

from tools.demo.__main__ import service_urls


def test_service_urls_come_from_the_default_ports_and_the_port_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TL_ENROLLMENT_HTTP_PORT", "9101")
    urls = service_urls("10.0.0.5", [])
    assert urls["identity"] == "http://10.0.0.5:8100"
    assert urls["enrollment"] == "http://10.0.0.5:9101"
    assert sorted(urls) == sorted(
        ["identity", "enrollment", "infusion", "adverse_events", "assessments", "projections"]
    )


def test_a_url_option_overrides_one_service() -> None:
    urls = service_urls("127.0.0.1", ["projections=https://ledger.example:443"])
    assert urls["projections"] == "https://ledger.example:443"
    assert urls["assessments"] == "http://127.0.0.1:8104"


@pytest.mark.parametrize("override", ["ledger=http://x", "projections", "projections="])
def test_a_malformed_url_option_is_refused(override: str) -> None:
    with pytest.raises(typer.BadParameter):
        service_urls("127.0.0.1", [override])
