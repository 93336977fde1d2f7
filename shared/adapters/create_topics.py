"""Create every service's topic before the services start, keeping its events forever.

    python -m shared.adapters.create_topics

docker compose runs it as a one-shot job, so that a broker without auto-creation has the
topics (with ``retention.ms=-1``) before any producer or consumer asks for them. Each
service still creates its own topic at start-up with the same settings: this is a head
start, not a second source of truth. It reads ``TL_KAFKA_BOOTSTRAP``, the
``TL_<SERVICE>_TOPIC`` overrides, ``TL_TOPIC_PARTITIONS`` and ``TL_TOPIC_REPLICATION``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from shared.adapters.topics import TopicSpec, ensure_topics, topic_config
from shared.kernel.settings import SettingsError

log = logging.getLogger(__name__)

# The services that publish a topic of their own (projections only reads them).
PUBLISHERS = ("identity", "enrollment", "infusion", "adverse_events", "assessments")


def publisher_topics(env: dict[str, str] | None = None) -> list[TopicSpec]:
    """One spec per publishing service, named and sized as ``ServiceSettings`` would."""
    env = dict(os.environ if env is None else env)
    partitions = _positive(env, "TL_TOPIC_PARTITIONS", 3)
    replication = _positive(env, "TL_TOPIC_REPLICATION", 1)
    return [
        TopicSpec(
            env.get(f"TL_{service.upper()}_TOPIC", f"trialledger.{service}.events"),
            partitions,
            replication,
        )
        for service in PUBLISHERS
    ]


async def create_topics(env: dict[str, str] | None = None) -> list[str]:
    """Create the missing topics, repair a finite retention; the names, once all are right."""
    env = dict(os.environ if env is None else env)
    bootstrap = env.get("TL_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        raise SettingsError("setting TL_KAFKA_BOOTSTRAP is missing (see docs/operations.md)")
    specs = publisher_topics(env)
    await ensure_topics(bootstrap, *specs)
    for spec in specs:
        # read back, so that the job fails rather than report a topic that would expire
        retention = (await topic_config(bootstrap, spec.name)).get("retention.ms")
        if retention != "-1":
            raise RuntimeError(f"topic {spec.name} keeps retention.ms={retention}, not -1")
    return [spec.name for spec in specs]


def _positive(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"setting {key} must be a positive integer, got {raw!r}")
    return int(raw)


def main() -> int:
    logging.basicConfig(level=os.environ.get("TL_LOG_LEVEL", "INFO"))
    try:
        names = asyncio.run(create_topics())
    except SettingsError as error:
        print(f"create_topics: {error}", file=sys.stderr)
        return 2
    for name in names:
        print(f"topic ready, retention forever: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
