"""Kafka topics of the services: created once, keeping their events forever."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from shared.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)

# The ledger and every late subscriber replay topics from the start: nothing expires.
FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 3
    replication: int = 1

    def configs(self) -> dict[str, str]:
        """Kept forever; on a replicated cluster, acknowledged (``acks=all``) only once two
        copies hold a record, so one broker lost loses nothing acknowledged."""
        if self.replication < 2:
            return FOREVER
        return {**FOREVER, "min.insync.replicas": "2"}


async def ensure_topics(bootstrap: str, *specs: TopicSpec) -> None:
    """Create each topic if missing, and make sure it keeps its events forever."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await _create_missing(admin, specs)
        await _keep_forever(admin, specs)
    finally:
        await admin.close()


async def _create_missing(admin: AIOKafkaAdminClient, specs: tuple[TopicSpec, ...]) -> None:
    existing = set(await admin.list_topics())
    missing: dict[str, TopicSpec] = {}  # by name: the broker refuses one named twice
    for spec in specs:
        if spec.name not in existing:
            missing.setdefault(spec.name, spec)
    if not missing:
        return
    new = [NewTopic(s.name, s.partitions, s.replication, topic_configs=s.configs())
           for s in missing.values()]  # fmt: skip
    response = await admin.create_topics(new)
    for topic, code, *message in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise for_code(code)(f"cannot create topic {topic}: {message}")
        log.info("topic ready topic=%s created=%s", topic, code == 0)


async def _keep_forever(admin: AIOKafkaAdminClient, specs: tuple[TopicSpec, ...]) -> None:
    """Repair a topic that someone created with a finite retention (or, replicated, that
    acknowledges a record held by one copy)."""
    wanted = {spec.name: spec.configs() for spec in specs}
    for name, current in (await _configs(admin, list(wanted))).items():
        if any(current.get(key) != value for key, value in wanted[name].items()):
            log.warning("topic configuration repaired topic=%s was=%s", name, current)
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted[name])]
            )


async def _configs(
    admin: AIOKafkaAdminClient, names: list[str], attempts: int = 120
) -> dict[str, dict[str, str]]:
    """Each topic's configuration. A topic created a moment ago may not be known to the
    broker's metadata yet (KRaft applies it asynchronously; on a busy machine just after
    the broker restarted, 10 s were seen not to do): ask again, for up to 30 s."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    for _ in range(attempts):
        configs: dict[str, dict[str, str]] = {}
        failed: list[str] = []
        for response in await admin.describe_configs(resources):
            for code, _message, _type, name, entries in response.resources:
                if code:
                    failed.append(f"{name} (error {code})")
                else:
                    configs[name] = {entry[0]: entry[1] for entry in entries}
        if not failed:
            return configs
        await asyncio.sleep(0.25)
    raise KafkaError(f"cannot describe topics: {', '.join(failed)}")


async def topic_config(bootstrap: str, name: str) -> dict[str, str]:
    """The topic's effective configuration (for operators and tests)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        return (await _configs(admin, [name]))[name]
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, *names: str) -> dict[str, list[int]]:
    """The partition numbers of each topic (for consumers that assign partitions by hand)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    return {
        topic["topic"]: sorted(p["partition"] for p in topic["partitions"])
        for topic in described
        if topic["error_code"] == 0
    }


async def ensure_service_topic(settings: ServiceSettings, *others: str) -> None:
    """Create a service's own topic, and the ``others`` it reads, with the partitions and
    replication its settings give (a topic read before its publisher started is created
    by its reader: it must be made as its publisher would make it)."""
    # identity reads its own topic: ensure_topics creates a name given twice once
    specs = [TopicSpec(name, settings.topic_partitions, settings.topic_replication)
             for name in (settings.topic, *others)]  # fmt: skip
    await ensure_topics(settings.kafka_bootstrap, *specs)
