"""One broker of a replicated Kafka cluster killed (kill -9) under load, then restarted.

The cluster is three KRaft nodes of ``deploy/local/infra.sh`` (``TL_KAFKA_NODES=3``: each
a broker and a controller voter) in a state folder of this test, beside the single broker
every other test uses; the six services run on it with topics of replication factor 3 and
``min.insync.replicas`` 2. The node killed is the leader of the enrollment topic's first
partition, while registrations go on through enrollment's HTTP API. Afterwards: every
acknowledged command is in the ledger once, ``verify`` and ``reconcile`` are clean, and the
time the ledger took to catch up is reported (docs/operations.md)."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.faults.conftest import Faulty, faulty_stack, loaded
from tests.faults.infra import infra

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="module"),
]
NODES = 3


@dataclass(frozen=True)
class Cluster:
    env: dict[str, str]  # infra.sh's settings for this cluster
    bootstrap: str

    async def pid(self, node: int) -> int:
        return int((await infra("kafka-pid", str(node), env=self.env)).split()[-1])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports of 127.0.0.1."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count < 65536 and all(_free(p) for p in range(first, first + count)):
            return first


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    first = free_ports(2 * NODES)
    env = {"TL_STATE_DIR": str(tmp_path_factory.mktemp("kafka-cluster")),
           "TL_KAFKA_NODES": str(NODES), "TL_KAFKA_PORT": str(first),
           "TL_KAFKA_CONTROLLER_PORT": str(first + 1)}  # fmt: skip
    await infra("start", "kafka", env=env)
    try:  # the brokers' addresses as infra.sh gives them to services
        settings = (Path(env["TL_STATE_DIR"]) / "env").read_text()
        (bootstrap,) = re.findall(r"^export TL_KAFKA_BOOTSTRAP=(\S+)$", settings, re.M)
        assert len(bootstrap.split(",")) == NODES, bootstrap
        yield Cluster(env, bootstrap)
    finally:
        await infra("stop", "kafka", env=env)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def on_cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster: Cluster
) -> AsyncIterator[Faulty]:
    async with faulty_stack(tmp_path_factory, "cluster", TL_KAFKA_BOOTSTRAP=cluster.bootstrap,
                            TL_TOPIC_REPLICATION=str(NODES)) as faulty:  # fmt: skip
        yield faulty


async def leader_and_configs(bootstrap: str, topic: str) -> tuple[int, int, dict[str, str]]:
    """The leader of ``topic``'s partition 0, its replication factor, and its settings."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = (await admin.describe_topics([topic]))[0]
        first = next(p for p in described["partitions"] if p["partition"] == 0)
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        entries = (await admin.describe_configs([resource]))[0].resources[0][4]
        return first["leader"], len(first["replicas"]), {e[0]: e[1] for e in entries}
    finally:
        await admin.close()


async def test_a_broker_killed_under_load_loses_nothing_and_the_ledger_catches_up(
    cluster: Cluster, on_cluster: Faulty, record_property: Callable[[str, object], None]
) -> None:
    topic = on_cluster.stack.enrollment_settings.topic
    leader, replicas, configs = await leader_and_configs(cluster.bootstrap, topic)
    assert replicas == NODES, f"{topic} has {replicas} replicas"
    assert configs["min.insync.replicas"] == "2", configs
    async with loaded(on_cluster, "KILL9") as load:
        await load.until(10)
        os.kill(await cluster.pid(leader), signal.SIGKILL)  # the partition's leader
        # commands go on (stored first, then published by a relay with acks=all to the
        # two replicas left)
        await load.until(len(load.acknowledged) + 20, timeout=120)
        await infra("start", "kafka", env=cluster.env)  # the killed node comes back
        await load.until(len(load.acknowledged) + 10, timeout=120)
    stopped = time.monotonic()
    await on_cluster.settled(load.acknowledged, timeout=180)
    caught_up = time.monotonic() - stopped
    await on_cluster.all_ready(timeout=120)
    record_property("ledger_caught_up_seconds", round(caught_up, 1))
    print(f"broker {leader} killed: {len(load.acknowledged)} acknowledged, ledger caught up "
          f"{caught_up:.1f}s after the load stopped; outcomes {dict(load.outcomes)}")  # fmt: skip
