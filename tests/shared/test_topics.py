"""Topic creation on the real broker: events are kept forever."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.adapters.topics import TopicSpec, ensure_topics, topic_config
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
