"""Run the enrollment service: its HTTP API and its relay, in one process.

    python -m services.enrollment

Settings come from ``TL_*`` environment variables (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from shared.adapters.cohort import CohortView
from shared.adapters.eventstore import postgres_env
from shared.adapters.outbox import Outbox
from shared.adapters.relay import create_relay
from shared.adapters.subject_views import Subscriptions, subscribe
from shared.adapters.topics import TopicSpec, ensure_service_topic, ensure_topics
from shared.kernel.keys import load_private_key, load_public_key
from shared.kernel.settings import SecuritySettings, ServiceSettings
from shared.kernel.signatures import RecordSigner
from shared.web.auth import TokenVerifier
from shared.web.runner import configure_logging, serve

SERVICE = "enrollment"
COHORT_GROUP = "trialledger-enrollment-cohort-view"


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> EnrollmentApplication:
    key = security.require("TL_RECORD_PRIVATE_KEY_FILE", security.record_private_key_file)
    signer = RecordSigner(load_private_key(key))
    return EnrollmentApplication(env=postgres_env(settings.database), signer=signer)


def create_http(
    application: EnrollmentApplication,
    security: SecuritySettings,
    outbox: Outbox,
    cohort: CohortView,
) -> FastAPI:
    verifier = TokenVerifier(load_public_key(security.token_public_key_file))
    return create_app(application, verifier, outbox, cohort=cohort)


def adverse_events_topic() -> str:
    return os.environ.get("TL_ADVERSE_EVENTS_TOPIC", "trialledger.adverse_events.events")


async def main() -> None:
    settings, security = ServiceSettings.from_env(SERVICE), SecuritySettings.from_env()
    await ensure_service_topic(settings)
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(adverse_events_topic()))
    application = create_application(settings, security)
    outbox = Outbox.of(application, PUBLICATION, settings)
    cohort = CohortView(settings.database)
    await cohort.open()
    try:
        broker = KafkaBroker(settings.kafka_bootstrap)
        subscribe(broker, adverse_events_topic(), COHORT_GROUP, cohort)
        await serve(
            settings,
            create_http(application, security, outbox, cohort),
            create_relay(outbox, settings),
            Subscriptions(broker),
        )
    finally:
        await cohort.close()


if __name__ == "__main__":
    configure_logging(SERVICE)
    asyncio.run(main())
