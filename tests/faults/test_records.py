"""Records that must not stop anything: the same event delivered twice, an event larger
than its topic takes, and an event whose mapping raises. The bad record is held with its
reason (and every later event of its key behind it), ``/ready`` and the metrics say so
within the stall threshold, ``verify`` names it, other subjects go on, and after the
fix the held events are published in their store order."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from tests.faults.conftest import STALL_SECONDS, Faulty, loaded, within
from tests.faults.infra import DEFAULT_LIMIT, set_topic_limit
from tests.support import eventually, screening_json

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="package"),
]
NOTICED = STALL_SECONDS + 10


async def register(faulty: Faulty, subject: str) -> None:
    body = {"subject_id": subject, "site_id": "ZJU-1"}
    answer = await faulty.stack.enrollment.post("/subjects", json=body,
                                                headers=faulty.investigator)  # fmt: skip
    assert answer.status_code == 201, answer.text


async def consent_and_screen(faulty: Faulty, subject: str) -> None:
    """A signed consent, then a screening (3.4 kB published: larger than a registration)."""
    stack = faulty.stack
    signature = await stack.signature(faulty.investigator, "responsibility",
                                      f"enrollment/consent/{subject}", "fault suite passphrase",
                                      "fault.inv")  # fmt: skip
    consent = {"form_version": "ICF v2.1", "signed_on": "2026-11-02", "obtained_by": "F Inv",
               "signature": signature}  # fmt: skip
    for path, body in ((f"/subjects/{subject}/consent", consent),
                       (f"/subjects/{subject}/screening", screening_json())):  # fmt: skip
        answer = await stack.enrollment.post(path, json=body, headers=faulty.investigator)
        assert answer.status_code == 200, answer.text


async def quarantine_visible(faulty: Faulty) -> None:
    topic = faulty.stack.enrollment_settings.topic

    async def held() -> bool:
        status, checks = await faulty.ready("enrollment")
        if status != 503 or not checks.get("relay", "").startswith("quarantined"):
            return False
        count = await faulty.metric("enrollment", "trialledger_relay_quarantined_events",
                                    topic=topic)  # fmt: skip
        return count is not None and count >= 1

    # /ready is cached for two seconds: both must say so at once, and keep saying it
    await within(NOTICED, held, "the quarantine in enrollment's /ready and metrics")

    async def retried() -> bool:  # the relay tried again (TL_QUARANTINE_RETRY_SECONDS)
        head = await faulty.stack.enrollment.get("/store/head", headers=faulty.auditor)
        quarantined = head.json()["quarantined"]
        return bool(quarantined) and quarantined[0]["attempts"] >= 2

    await eventually(retried, what="the relay's retry of the held event")
    assert await held(), "the quarantine was released while the topic's limit still refuses it"


async def verify_names_the_held_events(faulty: Faulty, subject: str) -> None:
    verified = (await faulty.stack.projections.get("/verify", headers=faulty.auditor)).json()
    assert not verified["ok"]
    held = [f for f in verified["store_findings"] if f["kind"] == "quarantined"]
    assert held and all(f["service"] == "enrollment" for f in held), verified["store_findings"]
    assert all(f["store_position"] and f["event_id"] for f in held)


async def versions_in_ledger_order(faulty: Faulty, subject: str) -> list[int]:
    rows = await faulty.ledger("SELECT record_version FROM ledger_entries WHERE subject_id = $1 "
                               "AND source = '/trial-ledger/enrollment' ORDER BY position",
                               subject)  # fmt: skip
    return [r["record_version"] for r in rows]


async def test_the_same_event_delivered_twice_is_one_ledger_entry(faulty: Faulty) -> None:
    await register(faulty, "DUP-1")
    await faulty.settled({"DUP-1"})
    settings = faulty.stack.enrollment_settings
    (original,) = await faulty.ledger(
        "SELECT payload FROM ledger_entries WHERE subject_id = 'DUP-1'"
    )  # the record exactly as it was published
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:  # the relay's redelivery after a crash looks exactly like this
        sent = await producer.send_and_wait(
            settings.topic, bytes(original["payload"]), key=b"DUP-1"
        )
    finally:
        await producer.stop()
    dead_before = await faulty.metric("projections", "trialledger_dead_letters")

    async def consumed() -> bool:
        offsets = await faulty.ledger(
            "SELECT next_offset FROM ingest_offsets WHERE topic = $1 AND kafka_partition = $2",
            sent.topic,
            sent.partition,
        )
        return bool(offsets) and offsets[0]["next_offset"] > sent.offset

    await eventually(consumed, what="the duplicate consumed by the ledger")
    assert await versions_in_ledger_order(faulty, "DUP-1") == [1]
    assert await faulty.metric("projections", "trialledger_dead_letters") == dead_before
    await faulty.settled({"DUP-1"})


async def test_an_event_over_the_topics_limit_is_held_and_released_once_the_limit_is_fixed(
    faulty: Faulty,
) -> None:
    settings = faulty.stack.enrollment_settings
    await set_topic_limit(settings.kafka_bootstrap, settings.topic, 2000)
    try:
        async with loaded(faulty, "BIG") as load:
            await register(faulty, "BIG-HELD")
            await consent_and_screen(faulty, "BIG-HELD")  # the screening is over 2 kB
            await quarantine_visible(faulty)
            await load.until(len(load.acknowledged) + 10)  # other subjects go on
            others = set(load.acknowledged)  # a snapshot: the load keeps acknowledging more
            await eventually(lambda: _in_ledger(faulty, others), what="others")
            await verify_names_the_held_events(faulty, "BIG-HELD")
    finally:
        await set_topic_limit(settings.kafka_bootstrap, settings.topic, DEFAULT_LIMIT)
    await faulty.all_ready()  # the relay retries by itself (TL_QUARANTINE_RETRY_SECONDS)
    await faulty.settled(load.acknowledged | {"BIG-HELD"})
    assert await versions_in_ledger_order(faulty, "BIG-HELD") == [1, 2, 3, 4]


async def test_a_record_whose_mapping_raises_is_held_until_the_fix_is_deployed(
    faulty: Faulty,
) -> None:
    enrollment = faulty.process("enrollment")
    await enrollment.stop()
    enrollment.module = "tests.faults.broken_enrollment"  # a defect in consent's mapping
    await enrollment.start()
    try:
        await register(faulty, "MAP-HELD")
        await consent_and_screen(faulty, "MAP-HELD")
        await register(faulty, "MAP-OTHER")
        await quarantine_visible(faulty)
        await eventually(lambda: _in_ledger(faulty, {"MAP-OTHER"}), what="another subject")
        await verify_names_the_held_events(faulty, "MAP-HELD")
        assert await versions_in_ledger_order(faulty, "MAP-HELD") == [1]
    finally:
        await enrollment.stop()
        enrollment.module = "services.enrollment"  # the fix, deployed: a restart
        await enrollment.start()
    await faulty.all_ready()
    await faulty.settled({"MAP-HELD", "MAP-OTHER"})
    assert await versions_in_ledger_order(faulty, "MAP-HELD") == [1, 2, 3, 4]


async def _in_ledger(faulty: Faulty, subjects: set[str]) -> bool:
    return subjects <= await faulty.registered_in_ledger()
