"""Running a command service's process: the wiring every ``services/<name>/__main__.py``
shares, so that each names only what is its own.

``run_command_service`` reads the settings, makes sure the service's topic and those it
reads exist, builds the application and its outbox, opens the local views and feeds
them from their topics (the identity topic's withdrawals of access among them, for every
service: ``shared.adapters.revocations``), and serves HTTP beside the relay
(``shared.web.runner.serve``) until stopped; then it closes the views, last opened first.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from shared.adapters.eventstore import ServiceApplication, postgres_env
from shared.adapters.outbox import Outbox
from shared.adapters.relay import create_relay
from shared.adapters.revocations import RevocationFeed, RevocationView
from shared.adapters.revocations import group_id as revocations_group
from shared.adapters.subject_views import Subscriptions, View, kafka_broker, subscribe
from shared.adapters.topics import ensure_service_topic
from shared.kernel.keys import load_private_key, load_public_key
from shared.kernel.publication import Publication
from shared.kernel.settings import DatabaseSettings, SecuritySettings, ServiceSettings
from shared.kernel.signatures import RecordSigner
from shared.web.auth import TokenVerifier
from shared.web.processes import other_processes
from shared.web.runner import Worker, configure_logging, serve
from shared.web.service_app import Serving

A = TypeVar("A", bound=ServiceApplication)
V = TypeVar("V")


def upstream_topic(service: str) -> str:
    """The topic of ``service`` this one reads: ``TL_<SERVICE>_TOPIC``, by default
    ``trialledger.<service>.events``."""
    return os.environ.get(f"TL_{service.upper()}_TOPIC", f"trialledger.{service}.events")


def record_signer(security: SecuritySettings) -> RecordSigner:
    """The signer of the service's records, with the key ``TL_RECORD_PRIVATE_KEY_FILE``."""
    key = security.require("TL_RECORD_PRIVATE_KEY_FILE", security.record_private_key_file)
    return RecordSigner(load_private_key(key))


def signed_application(
    kind: Callable[..., A],
) -> Callable[[ServiceSettings, SecuritySettings], A]:
    """How a service whose records are signed makes its application: on its event store
    (``postgres_env``), with its ``record_signer``."""

    def create(settings: ServiceSettings, security: SecuritySettings) -> A:
        return kind(env=postgres_env(settings.database), signer=record_signer(security))

    return create


def token_verifier(security: SecuritySettings) -> TokenVerifier:
    """The checker of the identity service's access tokens and signing assertions."""
    return TokenVerifier(load_public_key(security.token_public_key_file))


class LocalView(View, Protocol):
    """A view in the service's own database, fed from another service's topic."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Upstream:
    """A local view (made from the service's database settings) of ``service``'s topic,
    read by the consumer group ``group_id``."""

    service: str
    group_id: str
    view: Callable[[DatabaseSettings], LocalView]


def revocation_feed(
    service: str, settings: ServiceSettings, security: SecuritySettings
) -> RevocationFeed:
    """The view of withdrawn access that ``service`` keeps from the identity topic, and its
    check against the broker (``shared.adapters.revocations``); the view is opened by the
    caller, and fed by ``subscribe_revocations``."""
    return RevocationFeed(
        RevocationView(settings.database),
        settings.kafka_bootstrap,
        upstream_topic("identity"),
        revocations_group(service),
        max_lag=security.revocation_max_lag_seconds,
    )


def subscribe_revocations(broker: KafkaBroker, feed: RevocationFeed) -> None:
    """Feed ``feed``'s view from the identity topic, as every local view is fed."""
    subscribe(broker, feed.topic, feed.group_id, feed.view)


@dataclass(frozen=True)
class Running(Generic[A]):
    """What the process built, for the service's HTTP app."""

    security: SecuritySettings
    application: A
    outbox: Outbox
    views: tuple[LocalView, ...]
    revocations: RevocationFeed | None = None

    def view(self, kind: type[V]) -> V:
        """The open local view of class ``kind``."""
        return next(view for view in self.views if isinstance(view, kind))

    @property
    def serving(self) -> Serving:
        """What serves the HTTP app: the token verifier, the outbox, the server's clock."""
        return Serving(token_verifier(self.security), self.outbox, revocations=self.revocations)


async def run_command_service(
    service: str,
    publication: Publication,
    create_application: Callable[[ServiceSettings, SecuritySettings], A],
    create_http: Callable[[Running[A]], FastAPI],
    *upstreams: Upstream,
) -> None:
    """Run ``service`` until a signal stops it (see the module's docstring)."""
    settings, security = ServiceSettings.from_env(service), SecuritySettings.from_env()
    read = sorted({"identity", *(upstream.service for upstream in upstreams)})
    await ensure_service_topic(settings, *map(upstream_topic, read))
    application = create_application(settings, security)
    outbox = Outbox.of(application, publication, settings)
    revocations = revocation_feed(service, settings, security)
    async with AsyncExitStack() as views_open:
        views = tuple(upstream.view(settings.database) for upstream in upstreams)
        for view in (revocations.view, *views):
            await view.open()
            views_open.push_async_callback(view.close)
        broker = kafka_broker(settings.kafka_bootstrap)
        subscribe_revocations(broker, revocations)
        for upstream, view in zip(upstreams, views, strict=True):
            subscribe(broker, upstream_topic(upstream.service), upstream.group_id, view)
        workers: list[Worker] = [create_relay(outbox, settings), Subscriptions(broker), revocations]
        http = create_http(Running(security, application, outbox, views, revocations))
        await serve(settings, http, *workers)


def command_main(
    service: str,
    publication: Publication,
    create_application: Callable[[ServiceSettings, SecuritySettings], A],
    create_http: Callable[[Running[A]], FastAPI],
    *upstreams: Upstream,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A service's ``main``: ``run_command_service`` with these parts (for ``run``)."""

    async def main() -> None:
        await run_command_service(service, publication, create_application, create_http, *upstreams)

    return main


def run(
    service: str, main: Callable[[], Coroutine[Any, Any, None]], *, one_process: bool = False
) -> None:
    """The process's entry: JSON logs naming ``service``, then ``main`` until it ends, in
    as many processes as ``TL_<SERVICE>_HTTP_PROCESSES`` asks (``shared.web.processes``;
    ``one_process``: the service refuses more than one)."""
    configure_logging(service)
    with other_processes(service, allowed=not one_process):
        asyncio.run(main())
