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
from shared.auth import TokenVerifier
from shared.eventstore import postgres_env
from shared.keys import load_private_key, load_public_key
from shared.relay import Relay
from shared.runner import configure_logging, serve
from shared.settings import SecuritySettings, ServiceSettings
from shared.signatures import RecordSigner
from shared.topics import ensure_service_topic

SERVICE = "enrollment"


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> EnrollmentApplication:
    key = security.require("TL_RECORD_PRIVATE_KEY_FILE", security.record_private_key_file)
    signer = RecordSigner(load_private_key(key))
    return EnrollmentApplication(env=postgres_env(settings.database), signer=signer)


def create_relay(settings: ServiceSettings, application: EnrollmentApplication) -> Relay:
    return Relay(
        application,
        to_contract,
        settings.database,
        settings.kafka_bootstrap,
        settings.topic,
    )


def create_http(application: EnrollmentApplication, security: SecuritySettings) -> FastAPI:
    verifier = TokenVerifier(load_public_key(security.token_public_key_file))
    return create_app(application, verifier)


async def main() -> None:
    settings, security = ServiceSettings.from_env(SERVICE), SecuritySettings.from_env()
    await ensure_service_topic(settings)
    application = create_application(settings, security)
    http = create_http(application, security)
    await serve(settings, http, create_relay(settings, application))


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
