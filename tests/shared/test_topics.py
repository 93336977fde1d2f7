"""Topic creation on the real broker: events are kept forever."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.adapters.topics import TopicSpec, ensure_service_topic, ensure_topics, topic_config
from shared.kernel.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.mark.part11("11.10(c)")
async def test_creates_topic_with_infinite_retention(
    enrollment_settings_env: dict[str, str],
) -> None:
    bootstrap = ServiceSettings.from_env("enrollment").kafka_bootstrap
    name = f"test.topics.{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, TopicSpec(name, partitions=2))
    await ensure_topics(bootstrap, TopicSpec(name, partitions=2))  # twice is harmless
    config = await topic_config(bootstrap, name)
    assert (config["retention.ms"], config["retention.bytes"]) == ("-1", "-1")


@pytest.mark.part11("11.10(c)")
async def test_repairs_a_topic_created_with_finite_retention(
    enrollment_settings_env: dict[str, str],
) -> None:
    bootstrap = ServiceSettings.from_env("enrollment").kafka_bootstrap
    name = f"test.topics.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"retention.ms": "60000"})])
    finally:
        await admin.close()
    await ensure_topics(bootstrap, TopicSpec(name))
    assert (await topic_config(bootstrap, name))["retention.ms"] == "-1"


def test_a_replicated_topic_acknowledges_only_what_two_copies_hold() -> None:
    assert "min.insync.replicas" not in TopicSpec("t", replication=1).configs()
    replicated = TopicSpec("t", replication=3).configs()
    assert replicated["min.insync.replicas"] == "2"
    assert replicated["retention.ms"] == "-1"  # still kept forever


def test_every_faststream_broker_is_made_by_kafka_broker() -> None:
    """faststream hands a bootstrap string to aiokafka as a one-item list, which aiokafka
    does not split: a ``KafkaBroker`` given "a:9092,b:9092" cannot reach a cluster. Only
    ``kafka_broker`` (which splits it) may make one."""
    root = Path(__file__).resolve().parents[2]
    made_directly = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("services", "shared", "bench", "tests", "tools")
        for path in (root / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(?<![\w.])KafkaBroker\(", line) and path.name != "subject_views.py"
    ]
    assert not made_directly, f"use shared.adapters.subject_views.kafka_broker: {made_directly}"


async def test_a_service_reading_its_own_topic_creates_it_once(
    enrollment_settings_env: dict[str, str],
) -> None:
    """The identity service reads the identity topic it publishes to: on a fresh broker
    its own topic and the one it reads are one topic, created in one request."""
    settings = ServiceSettings.from_env("enrollment")
    name = f"test.topics.{uuid.uuid4().hex[:10]}"
    own = replace(settings, topic=name)
    await ensure_service_topic(own, name, name)
    config = await topic_config(settings.kafka_bootstrap, name)
    assert config["retention.ms"] == "-1"
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(f"{name}.b"), TopicSpec(f"{name}.b"))
    assert (await topic_config(settings.kafka_bootstrap, f"{name}.b"))["retention.ms"] == "-1"
