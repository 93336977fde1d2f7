"""Run the adverse-events service: HTTP API, relay, and the infusion view's subscription.

python -m services.adverse_events
"""

from __future__ import annotations

import asyncio
import os

from services.adverse_events.api import create_app
from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.publication import PUBLICATION
from services.adverse_events.views import InfusionView, create_subscriptions
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

SERVICE = "adverse_events"


def infusion_topic() -> str:
    return os.environ.get("TL_INFUSION_TOPIC", "trialledger.infusion.events")


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> AdverseEventsApplication:
    key = security.require("TL_RECORD_PRIVATE_KEY_FILE", security.record_private_key_file)
    return AdverseEventsApplication(
        env=postgres_env(settings.database), signer=RecordSigner(load_private_key(key))
    )


async def main() -> None:
    settings, security = ServiceSettings.from_env(SERVICE), SecuritySettings.from_env()
    await ensure_service_topic(settings)
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(infusion_topic()))
    application = create_application(settings, security)
    view = InfusionView(settings.database)
    await view.open()
    try:
        verifier = TokenVerifier(load_public_key(security.token_public_key_file))
        outbox = Outbox.of(application, PUBLICATION, settings)
        broker = create_subscriptions(settings.kafka_bootstrap, infusion_topic(), view)
        http = create_app(application, view, verifier, outbox)
        await serve(settings, http, create_relay(outbox, settings), Subscriptions(broker))
    finally:
        await view.close()


if __name__ == "__main__":
    configure_logging(SERVICE)
    asyncio.run(main())
