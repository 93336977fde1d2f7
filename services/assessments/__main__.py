"""Run the assessments service: HTTP API, relay, and the subscriptions of its views of
the infusion and enrollment topics.

python -m services.assessments
"""

from __future__ import annotations

import asyncio
import os

from services.assessments.api import create_app
from services.assessments.application import AssessmentsApplication
from services.assessments.publication import PUBLICATION
from services.assessments.views import InfusionView, VitalStatusView, create_subscriptions
from shared.adapters.eventstore import postgres_env
from shared.adapters.outbox import Outbox
from shared.adapters.relay import create_relay
from shared.adapters.subject_views import Subscriptions
from shared.adapters.topics import TopicSpec, ensure_service_topic, ensure_topics
from shared.kernel.keys import load_private_key, load_public_key
from shared.kernel.settings import SecuritySettings, ServiceSettings
from shared.kernel.signatures import RecordSigner
from shared.web.auth import TokenVerifier
from shared.web.runner import configure_logging, serve

SERVICE = "assessments"


def upstream_topics() -> tuple[str, str]:
    """The infusion and enrollment topics, in that order."""
    return (
        os.environ.get("TL_INFUSION_TOPIC", "trialledger.infusion.events"),
        os.environ.get("TL_ENROLLMENT_TOPIC", "trialledger.enrollment.events"),
    )


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> AssessmentsApplication:
    key = security.require("TL_RECORD_PRIVATE_KEY_FILE", security.record_private_key_file)
    return AssessmentsApplication(
        env=postgres_env(settings.database), signer=RecordSigner(load_private_key(key))
    )


async def main() -> None:
    settings, security = ServiceSettings.from_env(SERVICE), SecuritySettings.from_env()
    await ensure_service_topic(settings)
    for upstream in upstream_topics():
        await ensure_topics(settings.kafka_bootstrap, TopicSpec(upstream))
    application = create_application(settings, security)
    infusions, vital = InfusionView(settings.database), VitalStatusView(settings.database)
    await infusions.open()
    await vital.open()
    try:
        verifier = TokenVerifier(load_public_key(security.token_public_key_file))
        outbox = Outbox.of(application, PUBLICATION, settings)
        broker = create_subscriptions(settings.kafka_bootstrap, upstream_topics(), infusions, vital)
        http = create_app(application, infusions, vital, verifier, outbox)
        await serve(settings, http, create_relay(outbox, settings), Subscriptions(broker))
    finally:
        await vital.close()
        await infusions.close()


if __name__ == "__main__":
    configure_logging(SERVICE)
    asyncio.run(main())
