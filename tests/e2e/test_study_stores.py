"""End to end: a second study's auditor verifies its ledger against the command services'
stores (``cli --study SYN-CART-2 verify``, with stores), which answer it its own study's
events alone under ``/studies/SYN-CART-2/store``: clean while the ledger holds them all,
and naming a stored SYN-CART-2 event its ledger lacks (the projections service stopped)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from shared.kernel.keys import load_private_key
from shared.kernel.provenance import Role
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import Principal, TokenIssuer
from tests.e2e.stack import Stack, shared_stack
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
SECOND = "SYN-CART-2"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    studies = f"{DEFAULT_STUDY_ID},{SECOND}"
    async with shared_stack(tmp_path_factory, "study-stores", TL_STUDIES=studies) as services:
        yield services  # the second study's ledger schema is dropped with the stack


def token(stack: Stack, user_id: str, role: Role) -> str:
    """An access token of SYN-CART-2's, from the stack's token key."""
    issuer = TokenIssuer(load_private_key(stack.keys / "token.key"))
    who = Principal(user_id, "Sam Syn", "SH-1", frozenset({role}), f"s-{user_id}",
                    study_id=SECOND)  # fmt: skip
    return issuer.access_token(who, datetime.now(UTC))[0]


async def verify(stack: Stack, auditor: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.projections.cli", "--study", SECOND, "verify"],
        env={**os.environ, **stack.env, "TL_AUDITOR_TOKEN": auditor, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_a_second_study_verifies_its_ledger_against_its_own_stored_events(
    stack: Stack,
) -> None:
    coordinator = {"Authorization": f"Bearer {token(stack, 'syn.coord', Role.STUDY_COORDINATOR)}"}
    auditor = token(stack, "syn.aud", Role.AUDITOR)
    syn = {"Authorization": f"Bearer {auditor}"}
    prefix = f"/studies/{SECOND}"
    # the first study's records share the stores: a first-study subject beside
    first = await stack.member("ss.coordinator", "study stores passphrase", "study_coordinator")
    body = {"subject_id": "S-701", "site_id": "ZJU-1"}
    assert (await stack.enrollment.post("/subjects", json=body, headers=first)).status_code == 201
    body = {"subject_id": "SY-701", "site_id": "SH-1"}
    registered = await stack.enrollment.post(f"{prefix}/subjects", json=body, headers=coordinator)
    assert registered.status_code == 201, registered.text

    async def in_ledger() -> bool:
        answer = await stack.projections.get(f"{prefix}/trail", headers=syn)
        assert answer.status_code == 200, answer.text
        return "SY-701" in {row["subject_id"] for row in answer.json()}

    await eventually(in_ledger, what="SY-701 in SYN-CART-2's ledger")

    async def signed() -> bool:
        answer = await stack.projections.get(f"{prefix}/checkpoints")
        return bool(answer.json()["checkpoints"])

    await eventually(signed, what="a checkpoint of SYN-CART-2's ledger")
    store = (await stack.enrollment.get(f"{prefix}/store/head", headers=syn)).json()
    assert store["count"] == 1  # its own event alone; the first study's are not told
    clean = await verify(stack, auditor)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["ok"] is True
    assert "store_unreachable" not in clean.stdout

    # a stored SYN-CART-2 event the ledger never received: named by the verification
    await stack.processes["projections"].stop()
    try:
        body = {"subject_id": "SY-702", "site_id": "SH-1"}
        answer = await stack.enrollment.post(f"{prefix}/subjects", json=body, headers=coordinator)
        assert answer.status_code == 201, answer.text
        events = (await stack.enrollment.get(f"{prefix}/store/events", headers=syn)).json()
        newest = events["events"][-1]
        assert "SY-702" in newest["payload"]
        found = await verify(stack, auditor, TL_STALL_SECONDS="0.001")
        assert found.returncode != 0 and found.stdout, found.stderr[-3000:]
        assert json.loads(found.stdout)["ok"] is False
        assert "missing_from_ledger" in found.stdout and newest["event_id"] in found.stdout
        assert "S-701" not in found.stdout  # the first study's events are none of its
    finally:
        await stack.processes["projections"].start()
