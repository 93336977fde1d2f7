"""End to end: the projections service of a deployment serving two studies (``TL_STUDIES``)
keeps a ledger per study. A subject of the first study, registered through the API, is in
the first study's ledger only; records of SYN-CART-2 on the same topic (published as its
relay publishes them: identity does not issue tokens for another study yet) are in
SYN-CART-2's ledger only, under ``/studies/SYN-CART-2``, with its own origin, readiness
check and verification, through the API and the auditor CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from shared.kernel.keys import load_private_key
from shared.kernel.provenance import Role
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import Principal, TokenIssuer
from tests.e2e.stack import Stack, shared_stack
from tests.e2e.test_audit import cli
from tests.projections.conftest import published_events
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
SECOND = "SYN-CART-2"
PASSWORD = "study ledgers passphrase 1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    studies = f"{DEFAULT_STUDY_ID},{SECOND}"
    async with shared_stack(tmp_path_factory, "studies", TL_STUDIES=studies) as services:
        yield services  # the second study's ledger schema is dropped with the stack


def second_auditor(stack: Stack) -> str:
    """An access token of an auditor of SYN-CART-2, from the stack's token key."""
    issuer = TokenIssuer(load_private_key(stack.keys / "token.key"))
    who = Principal("aud.syn", "Sam Syn", "ZJU-1", frozenset({Role.AUDITOR}), "s-syn",
                    study_id=SECOND)  # fmt: skip
    token, _ = issuer.access_token(who, datetime.now(UTC))
    return token


async def publish_second_study(stack: Stack) -> None:
    """A subject C-001 of SYN-CART-2, its records on enrollment's topic as its relay
    publishes them (identity does not issue tokens for another study yet)."""
    second = [e.model_copy(update={"studyid": SECOND}) for e in published_events(1, "C")]
    producer = AIOKafkaProducer(bootstrap_servers=stack.enrollment_settings.kafka_bootstrap)
    await producer.start()
    try:
        for event in second:
            await producer.send_and_wait(stack.enrollment_settings.topic,
                                         event.to_kafka_value(), event.kafka_key())  # fmt: skip
    finally:
        await producer.stop()


async def test_two_studies_are_kept_in_two_ledgers_by_the_running_service(stack: Stack) -> None:
    coordinator = await stack.member("sl.coordinator", PASSWORD, "study_coordinator")
    body = {"subject_id": "S-501", "site_id": "ZJU-1"}
    registered = await stack.enrollment.post("/subjects", json=body, headers=coordinator)
    assert registered.status_code == 201, registered.text
    await publish_second_study(stack)
    first_auditor = await stack.member("sl.auditor", PASSWORD, "auditor")
    syn = {"Authorization": f"Bearer {second_auditor(stack)}"}
    prefix = f"/studies/{SECOND}"

    async def subjects(path: str, headers: dict[str, str]) -> set[str]:
        answer = await stack.projections.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        return {row["subject_id"] for row in answer.json() if row["subject_id"]}

    async def both_in() -> bool:
        first = await subjects("/trail", first_auditor)
        return "S-501" in first and await subjects(f"{prefix}/trail", syn) == {"C-001"}

    await eventually(both_in, what="each study's records in its own ledger")
    assert not {s for s in await subjects("/trail", first_auditor) if s.startswith("C-")}
    ready = (await stack.projections.get("/ready")).json()
    assert ready["checks"]["ingest"] == "ok" and ready["checks"][f"ingest:{SECOND}"] == "ok"
    origins = [
        (await stack.projections.get(f"{path}/checkpoints")).json()["origin"]
        for path in ("", prefix)
    ]
    assert origins[1] == f"{origins[0]}/{SECOND}"
    refused = await stack.projections.get(f"{prefix}/trail", headers=first_auditor)
    assert refused.status_code == 403 and refused.json()["code"] == "study_not_granted"

    async def signed() -> bool:
        answer = await stack.projections.get(f"{prefix}/checkpoints")
        return bool(answer.json()["checkpoints"])

    await eventually(signed, what="a checkpoint of SYN-CART-2's ledger")
    verified = await cli(stack, second_auditor(stack), "--study", SECOND, "verify", "--no-stores")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert '"ok": true' in verified.stdout
