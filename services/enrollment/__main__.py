"""Run the enrollment service: its HTTP API and its relay, in one process.

    python -m services.enrollment

Settings come from ``TL_*`` environment variables (docs/operations.md).
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import to_contract
from shared.eventstore import postgres_env
from shared.relay import Relay
from shared.runner import configure_logging, serve
from shared.settings import ServiceSettings
from shared.topics import TopicSpec, ensure_topics

SERVICE = "enrollment"


def create_application(settings: ServiceSettings) -> EnrollmentApplication:
    return EnrollmentApplication(env=postgres_env(settings.database))


def create_relay(settings: ServiceSettings, application: EnrollmentApplication) -> Relay:
    return Relay(
        application,
        to_contract,
        settings.database,
        settings.kafka_bootstrap,
        settings.topic,
    )


def create_http(application: EnrollmentApplication) -> FastAPI:
    return create_app(application)


async def main() -> None:
    settings = ServiceSettings.from_env(SERVICE)
    await ensure_topics(
        settings.kafka_bootstrap,
        TopicSpec(settings.topic, settings.topic_partitions, settings.topic_replication),
    )
    application = create_application(settings)
    await serve(settings, create_http(application), create_relay(settings, application))


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
