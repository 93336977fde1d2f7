"""The integrator's guide's consumer, run as it is printed, against the real broker."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.adapters.topics import TopicSpec, ensure_topics
from shared.contracts.enrollment import SubjectRegisteredV1
from shared.kernel.envelope import CONTENT_TYPE, ActorV1, CloudEvent, SourceV1
from tests.contracts.examples import ROOT, printed_in

EXAMPLE = ROOT / "docs/examples/consumer.py"
GUIDE = ROOT / "docs/integrating.md"
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_the_guide_prints_the_example_file_as_it_is() -> None:
    assert printed_in(GUIDE, EXAMPLE) == EXAMPLE.read_text()


def registered(subject_id: str, sequence: int) -> CloudEvent:
    record_id = uuid.uuid4()
    data = SubjectRegisteredV1(
        event_id=uuid.uuid5(record_id, "1"),
        subject_id=subject_id,
        record_type="Subject",
        record_id=record_id,
        version=1,
        occurred_at=NOW,
        recorded_at=NOW,
        actor=ActorV1(user_id="u-1", printed_name="Dr Lin Wei", role="investigator", site="ZJU-1"),
        correlation_id="corr-1",
        source=SourceV1(service="enrollment"),
        site_id="ZJU-1",
    )
    return CloudEvent.wrap(data, sequence)


def handled(event: CloudEvent) -> str:
    return f"handled {event.id} {event.type} {event.subject}"


async def publish(bootstrap: str, topic: str, events: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            headers = [("content-type", CONTENT_TYPE.encode())]
            value, key = event.to_kafka_value(), event.kafka_key()
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def run_until(bootstrap: str, topic: str, db: Path, expected: int) -> list[str]:
    """Run the example until it has printed ``expected`` lines, plus a quiet while to
    catch any line too many; then kill it, as a crash would."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        bootstrap,
        topic,
        str(db),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while len(lines) < expected:
                lines.append((await process.stdout.readline()).decode().strip())
                assert lines[-1], f"the example stopped after {lines[:-1]}"
        while True:
            async with asyncio.timeout(2):  # nothing more is due: a line here is one too many
                lines.append((await process.stdout.readline()).decode().strip())
    except TimeoutError:
        return lines
    finally:
        process.kill()
        await process.wait()


@pytest.mark.integration
async def test_consumer_skips_duplicates_and_resumes_from_its_own_offsets(
    enrollment_settings_env: dict[str, str], tmp_path: Path
) -> None:
    bootstrap = enrollment_settings_env["TL_KAFKA_BOOTSTRAP"]
    topic = f"test.consumer.{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, TopicSpec(topic, partitions=3))
    first = [registered(f"S-00{n}", n) for n in (1, 2, 3)]
    await publish(bootstrap, topic, [*first, first[0]])  # the relay repeating an event

    lines = await run_until(bootstrap, topic, tmp_path / "consumer.db", expected=4)
    assert sorted(lines) == sorted([*map(handled, first), f"skipped duplicate {first[0].id}"])

    later = [registered(f"S-00{n}", n) for n in (4, 5)]
    await publish(bootstrap, topic, later)
    lines = await run_until(bootstrap, topic, tmp_path / "consumer.db", expected=2)
    # resumed after what it had handled: nothing old is read again, not even to be skipped
    assert sorted(lines) == sorted(handled(e) for e in later)
