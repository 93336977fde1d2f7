"""The compose stack's tests need a Docker engine and a quarter of an hour: they run only
when asked for by marker (`make test-compose` runs ``pytest -m compose``), never in
`make test`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compose: the compose stack and images on a Docker engine (make test-compose)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "compose" in (config.option.markexpr or ""):
        return
    ours = [item for item in items if item.get_closest_marker("compose")]
    if ours:
        config.hook.pytest_deselected(items=ours)
        items[:] = [item for item in items if not item.get_closest_marker("compose")]
