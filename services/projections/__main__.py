"""Run the projections service: ingest every topic into the ledger, keep the views, sign
checkpoints, and serve the auditor API (refusing tokens whose access the identity topic
withdrew, as every service: ``shared.adapters.revocations``). One ledger per served study
(``TL_STUDIES``; ``services.projections.studies``), each ingested by a worker of its own.

    python -m services.projections
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.projections.api import create_app
from services.projections.application import ProjectionsApplication
from services.projections.config import ConsoleConfig, LedgerConfig
from services.projections.duties import DutiesCheck
from services.projections.ingest import Ingester, IngestOptions
from services.projections.ledger import LedgerStore
from services.projections.stores import COMMAND_SERVICES
from services.projections.studies import open_ledgers, study_ledgers
from services.projections.witness import Cosigner, WitnessConfig
from shared.adapters.revocations import RevocationFeed
from shared.adapters.subject_views import Subscriptions, kafka_broker
from shared.adapters.topics import TopicSpec, ensure_topics
from shared.contracts.adverse_events import ADVERSE_EVENT_CONTRACTS
from shared.contracts.assessments import ASSESSMENT_CONTRACTS
from shared.contracts.enrollment import ENROLLMENT_CONTRACTS
from shared.contracts.identity import IDENTITY_CONTRACTS
from shared.contracts.infusion import INFUSION_CONTRACTS
from shared.contracts.security import AccessDeniedV1, RecordSignedV1, RecordSignedV2
from shared.kernel.envelope import EventData, contract_registry
from shared.kernel.keys import load_private_key
from shared.kernel.settings import SecuritySettings, ServiceSettings, SettingsError
from shared.study import DEFAULT_STUDY_ID, served_studies
from shared.web.runner import serve
from shared.web.service_main import (
    revocation_feed,
    run,
    subscribe_revocations,
    token_verifier,
    upstream_topic,
)

SERVICE = "projections"
DEFAULT_SOURCES = ",".join(f"trialledger.{service}.events" for service in COMMAND_SERVICES)


def known_contracts() -> dict[str, type[EventData]]:
    """Every published event type the ledger accepts."""
    return {
        **IDENTITY_CONTRACTS,
        **ENROLLMENT_CONTRACTS,
        **INFUSION_CONTRACTS,
        **ADVERSE_EVENT_CONTRACTS,
        **ASSESSMENT_CONTRACTS,
        **contract_registry(AccessDeniedV1, RecordSignedV1, RecordSignedV2),
    }


def source_topics(env: dict[str, str] | None = None) -> list[str]:
    raw = (env or dict(os.environ)).get("TL_PROJECTIONS_SOURCES", DEFAULT_SOURCES)
    return [topic.strip() for topic in raw.split(",") if topic.strip()]


def create_ingester(
    settings: ServiceSettings,
    security: SecuritySettings,
    config: LedgerConfig,
    ledger: LedgerStore,
    application: ProjectionsApplication,
    study_id: str = DEFAULT_STUDY_ID,
    served: tuple[str, ...] = (),
) -> Ingester:
    """The ingester of ``study_id``'s ``ledger`` (``served``: every study with a ledger)."""
    key_file = security.require(
        "TL_CHECKPOINT_PRIVATE_KEY_FILE", security.checkpoint_private_key_file
    )
    options = IngestOptions(
        checkpoint_every=config.checkpoint_every,
        checkpoint_interval=config.checkpoint_interval,
        stall_after=config.stall_after,
    )
    signing = load_private_key(key_file)
    current = signing.public_key()
    return Ingester(
        ledger,
        settings.kafka_bootstrap,
        source_topics(),
        known_contracts(),
        signing,
        options,
        on_appended=application.views.catch_up,
        older_keys=[k for k in config.checkpoint_keys if k != current],
        study_id=study_id,
        served=served,
    )


def create_cosigners(config: LedgerConfig, ledgers: dict[str, LedgerStore]) -> list[Cosigner]:
    """A worker per study's ledger that has each new checkpoint cosigned, all by the one
    witness (none: no witness configured). The auditor's CLI may be given the URL alone
    (to ask the witness); the service needs both, since it checks each cosignature before
    it keeps it."""
    if config.witness_url is None and config.witness is None:
        return []
    if config.witness_url is None or config.witness is None:
        raise SettingsError(
            "settings TL_WITNESS_URL and TL_WITNESS_VKEY (or "
            "TL_WITNESS_VKEY_FILE) go together for the projections service"
        )
    witness = WitnessConfig(config.witness_url, config.witness, config.witness_interval,
                            config.stall_after)  # fmt: skip
    return [Cosigner(ledger, witness, study_id=study) for study, ledger in ledgers.items()]


def create_http(
    application: ProjectionsApplication,
    security: SecuritySettings,
    revocations: RevocationFeed | None = None,
    studies: dict[str, ProjectionsApplication] | None = None,
) -> FastAPI:
    """The API of the first study's ``application``, and of every study of ``studies``
    under ``/studies/<id>``."""
    verifier = token_verifier(security)
    return create_app(application, verifier, revocations, ConsoleConfig.from_env(), studies)


async def main() -> None:
    settings, security = ServiceSettings.from_env(SERVICE), SecuritySettings.from_env()
    topics = source_topics()
    await ensure_topics(
        settings.kafka_bootstrap,
        *(TopicSpec(t, settings.topic_partitions, settings.topic_replication) for t in topics),
    )
    await ensure_topics(settings.kafka_bootstrap, TopicSpec(upstream_topic("identity")))
    config = LedgerConfig.from_env(security)
    served = served_studies()
    ledgers = study_ledgers(settings.database, config.origin, served)
    studies = tuple(ledgers)
    await open_ledgers(ledgers)  # at start, every ledger opens or the service does not
    revocations = revocation_feed(SERVICE, settings, security)
    await revocations.view.open()
    several = len(studies) > 1  # the stores hold several studies': compared per study
    applications = {
        study: ProjectionsApplication.configured(
            settings, config, ledger, study if several else None
        )
        for study, ledger in ledgers.items()
    }
    first = applications[DEFAULT_STUDY_ID]
    # one worker per study: one study's failing ingest holds back no other's
    ingesters = [
        create_ingester(settings, security, config, ledger, applications[study], study, studies)
        for study, ledger in ledgers.items()
    ]
    try:
        for application in applications.values():
            await application.views.catch_up()
        # the witness cosigns every study's checkpoints, each ledger a log of its own
        # (docs/operations.md, "The witness")
        cosigners = create_cosigners(config, ledgers)
        broker = kafka_broker(settings.kafka_bootstrap)
        subscribe_revocations(broker, revocations)
        await serve(
            settings,
            create_http(first, security, revocations, applications),
            *ingesters,
            Subscriptions(broker),
            revocations,
            # /ready: the same forbidden role pairs as identity's (TL_INCOMPATIBLE_ROLES)
            DutiesCheck(first.duties, ConsoleConfig.from_env().identity_url),
            *cosigners,
        )
    finally:
        await revocations.view.close()
        for ledger in ledgers.values():
            await ledger.close()


if __name__ == "__main__":
    run(SERVICE, main, one_process=True)  # one ingester per study ledger
