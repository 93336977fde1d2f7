"""End to end: every running service answers /health and /ready, exposes Prometheus
metrics (requests, relay lag, consumer lag, dead letters), and writes JSON log lines
carrying the correlation id it echoes."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.stack import ServiceProcess, Stack, shared_stack
from tests.support import eventually

# One stack for the module: these tests only read, and a stack takes seconds to start.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

RELAYS = ("identity", "enrollment", "infusion", "adverse_events")
# the consumer groups each service follows, as its composition root names them
CONSUMERS = {
    "enrollment": ("trialledger-enrollment-cohort-view",),
    "infusion": ("trialledger-infusion-enrollment-view", "trialledger-infusion-cohort-view"),
    "adverse_events": ("trialledger-adverse-events-infusion-view",),
    "projections": ("trialledger-projections",),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with shared_stack(tmp_path_factory, "observability") as services:
        yield services


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` with (at least) ``labels``, if present."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            return float(match.group(2))
    return None


async def test_every_service_is_ready_and_exposes_its_metrics(stack: Stack) -> None:
    for name, process in stack.processes.items():
        assert (await process.client.get("/health")).status_code == 200
        ready = await process.client.get("/ready")
        assert ready.status_code == 200, f"{name}: {ready.text}"
        worker = "ingest" if name == "projections" else "relay"
        # projections also judges accounts by identity's role pairs (separation of duties)
        duties = {"separation_of_duties": "ok"} if name == "projections" else {}
        assert ready.json()["checks"] == {
            "database": "ok",
            "kafka": "ok",
            worker: "ok",
            "revocations": "ok",
            **duties,
        }
        text = (await process.client.get("/metrics")).text
        assert sample(
            text, "trialledger_http_requests_total", service=name, route="/ready", status="200"
        ), name
        assert sample(text, "trialledger_readings_up", service=name) == 1.0, text
        for group in (*CONSUMERS.get(name, ()), f"trialledger-{name}-revocations"):
            assert sample(text, "trialledger_consumer_lag_messages", consumer=group) is not None
            assert sample(text, "trialledger_dead_letters", consumer=group) == 0.0, text


async def test_relay_lag_falls_to_zero_once_events_are_published(stack: Stack) -> None:
    # bootstrapping the administrator recorded identity events before the relay started
    for name in RELAYS:
        await eventually(relay_caught_up(stack.processes[name]), 30, f"{name} relay lag 0")


def relay_caught_up(process: ServiceProcess) -> Callable[[], Awaitable[bool]]:
    topic = process.env[f"TL_{process.name.upper()}_TOPIC"]

    async def check() -> bool:
        text = (await process.client.get("/metrics")).text
        lag = sample(text, "trialledger_relay_lag_events", service=process.name, topic=topic)
        return lag == 0

    return check


async def test_the_correlation_id_is_echoed_and_in_the_json_logs(stack: Stack) -> None:
    process = stack.processes["enrollment"]
    response = await process.client.get("/health", headers={"X-Correlation-Id": "e2e-corr-81"})
    assert response.headers["x-correlation-id"] == "e2e-corr-81"

    async def logged() -> bool:
        return any(line.get("correlation_id") == "e2e-corr-81" for line in log_lines(process))

    await eventually(logged, timeout=10, what="a JSON log line with the correlation id")


async def test_every_log_line_of_every_service_is_one_json_object(stack: Stack) -> None:
    for name, process in stack.processes.items():
        lines = log_lines(process)
        assert lines, name
        assert {line["service"] for line in lines} == {name}
        assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)


def log_lines(process: ServiceProcess) -> list[dict[str, Any]]:
    """The process's log, each line parsed as JSON (a line that is not fails the test)."""
    return [json.loads(line) for line in process.log.read_text().splitlines() if line]
