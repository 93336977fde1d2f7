"""``python -m shared.adapters.create_topics``: the compose stack's topic job."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from shared.adapters.create_topics import PUBLISHERS, create_topics, publisher_topics
from shared.adapters.topics import topic_config
from shared.kernel.settings import ServiceSettings, SettingsError
from tests.deploy.files import ROOT, applications, run


def test_every_service_but_the_projections_has_its_topic_made() -> None:
    assert set(PUBLISHERS) == applications() - {"projections"}


def test_topics_are_named_and_sized_as_each_service_names_them() -> None:
    env = {"TL_TOPIC_PARTITIONS": "6", "TL_ENROLLMENT_TOPIC": "site7.enrollment"}
    for service, spec in zip(PUBLISHERS, publisher_topics(env), strict=True):
        settings = ServiceSettings.from_env(
            service,
            {
                **env,
                "TL_KAFKA_BOOTSTRAP": "kafka:9092",
                f"TL_{service.upper()}_DATABASE_URL": "postgresql://u:p@h/d",
            },
        )
        assert (spec.name, spec.partitions, spec.replication) == (
            settings.topic,
            settings.topic_partitions,
            settings.topic_replication,
        )


@pytest.mark.parametrize("value", ["0", "-1", "three"])
def test_refuses_a_partition_count_that_is_not_positive(value: str) -> None:
    with pytest.raises(SettingsError, match="TL_TOPIC_PARTITIONS"):
        publisher_topics({"TL_TOPIC_PARTITIONS": value})


def test_the_job_fails_naming_the_missing_bootstrap() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TL_KAFKA_BOOTSTRAP"}
    result = run([sys.executable, "-m", "shared.adapters.create_topics"], cwd=ROOT, env=env)
    assert result.returncode == 2
    assert "TL_KAFKA_BOOTSTRAP" in result.stderr


@pytest.mark.integration
async def test_creates_each_topic_keeping_its_events_forever() -> None:
    bootstrap = os.environ.get("TL_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.fail("TL_KAFKA_BOOTSTRAP is unset: run with `make test` (deploy/local)")
    run = uuid.uuid4().hex[:10]
    env = {"TL_KAFKA_BOOTSTRAP": bootstrap}
    env |= {f"TL_{s.upper()}_TOPIC": f"test.create_topics.{s}.{run}" for s in PUBLISHERS}
    names = await create_topics(env)
    assert names == [env[f"TL_{s.upper()}_TOPIC"] for s in PUBLISHERS]
    for name in names:
        config = await topic_config(bootstrap, name)
        assert (config["retention.ms"], config["retention.bytes"]) == ("-1", "-1")
    assert await create_topics(env) == names, "a second run finds them ready"
