"""The local infrastructure the fault suite breaks and mends: the real broker and the
real PostgreSQL of ``deploy/local`` (the ones every test uses)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.adapters.topics import FOREVER

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "local" / "infra.sh"
DEFAULT_LIMIT = 1_048_588  # Kafka's default max.message.bytes


async def infra(*args: str, env: dict[str, str] | None = None) -> str:
    """``deploy/local/infra.sh <args>``, which must succeed (``env``: settings of another
    instance, such as a cluster's); its output."""
    process = await asyncio.create_subprocess_exec(
        "bash", str(INFRA), *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def as_superuser(database: str, sql: str, schema: str | None = None) -> str:
    """``sql`` as the PostgreSQL superuser of ``database`` (its output); with ``schema``,
    in that schema with the append-only triggers switched off, as a hostile superuser
    would."""
    if schema is not None:
        sql = (f'SET search_path TO "{schema}";\nSET session_replication_role = replica;\n'
               f"BEGIN;\n{sql}\nCOMMIT;\n")  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        "bash", str(INFRA), "superuser-sql", database,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate(sql.encode())
    assert process.returncode == 0, output.decode()
    return output.decode()


def kill_postmaster() -> int:
    """kill -9 of the PostgreSQL postmaster; returns its pid."""
    state = Path(os.environ.get("TL_STATE_DIR") or ROOT / ".local")
    pid = int((state / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    return pid


async def set_topic_limit(bootstrap: str, topic: str, limit: int) -> None:
    """The topic's ``max.message.bytes`` (its other settings kept: forever)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {**FOREVER, "max.message.bytes": str(limit)}
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)
        await admin.alter_configs([resource])
    finally:
        await admin.close()
