"""The broker stopped and started, and PostgreSQL's postmaster killed and restarted: each
service says so in ``/ready`` and its metrics within the stall threshold, logs a few
summarising lines (not one per retry), and recovers without a manual step; no
acknowledged command is lost and nothing is in the ledger twice. While the broker is down
for longer than ``TL_REVOCATION_MAX_LAG_SECONDS``, every service fails closed: requests with
an access token are answered 503 ``revocations_unconfirmed`` (docs/security.md)."""

from __future__ import annotations

import json
import time

import pytest

from tests.faults.conftest import STALL_SECONDS, Faulty, loaded, log_lines_since, within
from tests.faults.infra import infra, kill_postmaster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="package"),
]
NOTICED = STALL_SECONDS + 10  # the threshold, the readiness cache and a busy machine
OUTAGE = 25.0  # seconds the broker stays down


async def test_a_broker_outage_is_visible_at_once_and_recovers_by_itself(
    faulty: Faulty,
) -> None:
    logs = {name: p.log.stat().st_size for name, p in faulty.stack.processes.items()}
    async with loaded(faulty, "BRK") as load:
        await load.until(10)
        stopped = time.monotonic()
        await infra("stop", "kafka")
        try:
            # commands are still recorded (the store is the truth), until the services
            # fail closed (TL_REVOCATION_MAX_LAG_SECONDS, below); the relays wait
            await load.until(len(load.acknowledged) + 10)

            async def relay_stalled() -> bool:
                status, checks = await faulty.ready("enrollment")
                return status == 503 and checks.get("relay", "").startswith("stalled")

            await within(NOTICED, relay_stalled, "enrollment's relay stall in /ready")
            age = await faulty.metric("enrollment", "trialledger_relay_oldest_unpublished_seconds")
            assert age is not None and age > STALL_SECONDS
            for name in faulty.stack.processes:
                status, checks = await faulty.ready(name)
                assert status == 503 and checks["kafka"] != "ok", (name, checks)

            # long enough for every client to retry many times: the log must not grow with
            # it. Until the relay has held a command unpublished for OUTAGE seconds:
            async def outage_lasted() -> bool:
                age = await faulty.metric(
                    "enrollment", "trialledger_relay_oldest_unpublished_seconds"
                )
                return age is not None and age >= OUTAGE

            await within(OUTAGE + NOTICED, outage_lasted, f"an outage of {OUTAGE:.0f}s")
            outage = time.monotonic() - stopped
            # by now (OUTAGE > TL_REVOCATION_MAX_LAG_SECONDS) no service can tell whose
            # access was withdrawn meanwhile: each refuses every request with a token
            for name, (client, path) in faulty.token_reads().items():
                answer = await client.get(path, headers=faulty.auditor)
                assert answer.status_code == 503, (name, answer.text)
                assert answer.json()["code"] == "revocations_unconfirmed", (name, answer.text)
                status, checks = await faulty.ready(name)
                assert checks["revocations"].startswith("revocations_unconfirmed"), (name, checks)
            assert load.outcomes["503"] > 0, load.outcomes
        finally:
            await infra("start", "kafka")
        await faulty.all_ready(timeout=120)
        await load.until(len(load.acknowledged) + 10)
    await faulty.settled(load.acknowledged)
    for name, process in faulty.stack.processes.items():
        noisy = [line for line in log_lines_since(process, logs[name])
                 if json.loads(line)["level"] in ("WARNING", "ERROR")]  # fmt: skip
        print(f"broker outage {outage:.0f}s: {name} wrote {len(noisy)} warnings/errors")
        # one line when a problem begins, one when it ends, one a minute while it lasts,
        # per client and kind of problem: a few dozen at most, whatever the outage's length
        assert len(noisy) <= 40, f"{name}: {len(noisy)} lines in {outage:.0f}s: {noisy[:8]}"


async def test_postgres_killed_and_restarted_every_service_recovers_by_itself(
    faulty: Faulty,
) -> None:
    async with loaded(faulty, "PGK") as load:
        await load.until(10)
        kill_postmaster()
        try:

            async def database_down() -> bool:
                status, checks = await faulty.ready("enrollment")
                return status == 503 and checks.get("database") != "ok"

            await within(NOTICED, database_down, "enrollment's database check in /ready")
        finally:
            await infra("start", "postgres")
        await faulty.all_ready(timeout=120)
        await load.until(len(load.acknowledged) + 10, timeout=90)
    await faulty.settled(load.acknowledged)
