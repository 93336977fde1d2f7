"""Run the infusion service: HTTP API, relay, and the enrolment view's subscription.

python -m services.infusion
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

from fastapi import FastAPI

from services.infusion.api import create_app
from services.infusion.application import InfusionApplication
from services.infusion.publication import PUBLICATION
from services.infusion.rules import InfusionRules
from services.infusion.views import EnrolmentView, create_subscriptions
from shared.adapters.cohort import CohortView
from shared.adapters.eventstore import postgres_env
from shared.adapters.outbox import Outbox
from shared.adapters.relay import create_relay
from shared.adapters.subject_views import Subscriptions, subscribe
from shared.adapters.topics import TopicSpec, ensure_service_topic, ensure_topics
from shared.kernel.keys import load_private_key, load_public_key
from shared.kernel.settings import SecuritySettings, ServiceSettings, SettingsError
from shared.kernel.signatures import RecordSigner
from shared.web.auth import TokenVerifier
from shared.web.runner import configure_logging, serve

SERVICE = "infusion"
COHORT_GROUP = "trialledger-infusion-cohort-view"


def enrollment_topic() -> str:
    return os.environ.get("TL_ENROLLMENT_TOPIC", "trialledger.enrollment.events")


def infusion_rules(env: dict[str, str] | None = None) -> InfusionRules:
    """The configurable protocol window and dose tolerance (defaults in rules.py)."""
    env = dict(os.environ if env is None else env)
    default = InfusionRules()
    try:
        return InfusionRules(
            dose_tolerance=Decimal(env.get("TL_INFUSION_DOSE_TOLERANCE", default.dose_tolerance)),
            window_min_days=int(env.get("TL_INFUSION_WINDOW_MIN_DAYS", default.window_min_days)),
            window_max_days=int(env.get("TL_INFUSION_WINDOW_MAX_DAYS", default.window_max_days)),
        )
    except (ArithmeticError, ValueError):
        raise SettingsError("TL_INFUSION_* rules must be numbers") from None


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> InfusionApplication:
    key = security.require("TL_RECORD_PRIVATE_KEY_FILE", security.record_private_key_file)
    return InfusionApplication(
        env=postgres_env(settings.database),
        signer=RecordSigner(load_private_key(key)),
        rules=infusion_rules(),
    )


def create_http(
    application: InfusionApplication,
    view: EnrolmentView,
    security: SecuritySettings,
    outbox: Outbox,
    cohort: CohortView,
) -> FastAPI:
    verifier = TokenVerifier(load_public_key(security.token_public_key_file))
    return create_app(application, view, verifier, outbox, cohort=cohort)


def adverse_events_topic() -> str:
    return os.environ.get("TL_ADVERSE_EVENTS_TOPIC", "trialledger.adverse_events.events")


async def main() -> None:
    settings, security = ServiceSettings.from_env(SERVICE), SecuritySettings.from_env()
    await ensure_service_topic(settings)
    for upstream in (enrollment_topic(), adverse_events_topic()):
        await ensure_topics(settings.kafka_bootstrap, TopicSpec(upstream))
    application = create_application(settings, security)
    outbox = Outbox.of(application, PUBLICATION, settings)
    view, cohort = EnrolmentView(settings.database), CohortView(settings.database)
    await view.open()
    await cohort.open()
    try:
        broker = create_subscriptions(settings.kafka_bootstrap, enrollment_topic(), view)
        subscribe(broker, adverse_events_topic(), COHORT_GROUP, cohort)
        await serve(
            settings,
            create_http(application, view, security, outbox, cohort),
            create_relay(outbox, settings),
            Subscriptions(broker),
        )
    finally:
        await cohort.close()
        await view.close()


if __name__ == "__main__":
    configure_logging(SERVICE)
    asyncio.run(main())
