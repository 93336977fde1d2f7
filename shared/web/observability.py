"""Health, readiness, Prometheus metrics and correlation ids for a service's HTTP app.

``instrument(app, settings, *workers)`` (called by ``shared.web.runner.serve``) adds:

- a middleware that takes the request's ``x-correlation-id`` (or makes one), keeps it
  in the logging context for the whole request, echoes it in the response, and counts
  requests by method, route template and status, with their latency;
- ``GET /ready``: 200 when the service's database and the Kafka broker answer and its
  workers keep their promises (``shared.adapters.readings.Checked``: the relay publishes every
  stored event within ``TL_STALL_SECONDS`` and holds none in quarantine; the ledger's
  ingest keeps up), else 503 naming each failing check and why (``/health`` stays a cheap
  liveness answer);
- ``GET /metrics``: Prometheus text, from a registry of this app's own (several apps in
  one test process never share a metric), with the workers' readings taken at scrape
  time (relay lag, age of the oldest unpublished event, quarantined events, consumer
  lag, dead letters, messages consumed).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.adapters.readings import Checked, KafkaOffsets, Observed, Readings
from shared.kernel.logs import correlated
from shared.kernel.settings import DatabaseSettings, ServiceSettings
from shared.web.inputs import HttpMiddleware

log = logging.getLogger(__name__)

HEADER = "x-correlation-id"
# A client's id is kept when it is a plain token; anything else is replaced, so that a
# header cannot smuggle spaces, control characters or megabytes into logs and events.
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:/@+=-]{1,128}")


def instrument(app: FastAPI, settings: ServiceSettings, *workers: object) -> Observer:
    """Add correlation ids, request metrics, ``/ready`` and ``/metrics`` to ``app``.

    Workers that implement ``shared.adapters.readings.Observed`` report at each scrape; others
    are ignored. Call before the app serves its first request.
    """
    sources = [w for w in workers if isinstance(w, Observed)]
    observer = Observer(settings.service, settings.kafka_bootstrap, sources)
    checked = [w for w in workers if isinstance(w, Checked)]
    readiness = Readiness(settings.database, settings.kafka_bootstrap, checked)
    app.add_middleware(CorrelationAndMetrics, observer=observer)
    app.state.observer = observer
    add_operations(app, readiness, observer)
    return observer


def add_operations(app: FastAPI, readiness: Readiness, observer: Observer) -> None:
    """Add ``/health`` (unless the app has its own), ``/ready`` and ``/metrics`` to ``app``.

    ``instrument`` calls it for the served app, and ``shared.contract_docs`` for the
    published OpenAPI documents (with stand-ins that are never called), so that the
    documents describe the routes that answer.
    """
    if not any(getattr(route, "path", None) == "/health" for route in app.routes):

        @app.get("/health", tags=["operations"])
        async def health() -> dict[str, str]:
            """Liveness: the process answers."""
            return {"status": "ok"}

    @app.get("/ready", tags=["operations"], responses={503: {"description": "not ready"}})
    async def ready() -> JSONResponse:
        """200 when the database and Kafka answer and no event is stuck; 503 names each
        failing check and why (where events are stuck: topic, store position, age)."""
        checks = await readiness.check()
        # "ok, <note>": passing, with something an operator should know (not yet compared)
        ok = all(result == "ok" or result.startswith("ok, ") for result in checks.values())
        body = {"status": "ready" if ok else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text exposition of this service's metrics."""
        return Response(await observer.exposition(), media_type=CONTENT_TYPE_LATEST)


class Observer:
    """One app's metrics registry: request metrics, and the workers' readings."""

    def __init__(
        self,
        service: str,
        bootstrap: str,
        sources: Sequence[Observed] = (),
        timeout: float = 3.0,
    ) -> None:
        self.service = service
        self.bootstrap = bootstrap
        self.sources = list(sources)
        self.timeout = timeout
        # the *_created series only double the size of every scrape
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "trialledger_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = PromHistogram(
            "trialledger_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.snapshot = _Snapshot(service)
        self.registry.register(self.snapshot)
        self._lock = asyncio.Lock()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(self.service, method, route, str(status)).inc()
        self.latency.labels(self.service, method, route).observe(seconds)

    async def exposition(self) -> bytes:
        """Read the workers, then render every metric (one scrape at a time)."""
        async with self._lock:
            self.snapshot.readings, self.snapshot.failed = await self._read()
            return generate_latest(self.registry)

    async def _read(self) -> tuple[Readings, int]:
        readings, failed = Readings(), 0
        async with KafkaOffsets(self.bootstrap, timeout_ms=int(self.timeout * 1000)) as kafka:
            for source in self.sources:
                try:
                    found = await asyncio.wait_for(source.readings(kafka), self.timeout)
                except Exception as error:  # a scrape reports what it can, never fails
                    log.warning("metrics reading failed source=%s error=%r",
                                type(source).__name__, error)  # fmt: skip
                    failed += 1
                else:
                    readings = readings.merged(found)
        return readings, failed


@dataclass(frozen=True)
class _Family:
    """A metric family read off one mapping of ``Readings``: a sample per key, labelled
    by the service, then by the key (a tuple of several labels, or one). A label whose
    value is empty is left out: to Prometheus it is the same series, and a label added to
    a family (the witness's ``study``) leaves the series it had before unchanged."""

    reading: str
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily]
    name: str
    documentation: str
    labels: tuple[str, ...]

    def metric(self, service: str, readings: Readings) -> Metric:
        family = self.kind(self.name, self.documentation, labels=["service", *self.labels])
        for key, value in getattr(readings, self.reading).items():
            family.add_metric([service, *(key if isinstance(key, tuple) else (key,))], value)
        family.samples = [
            sample._replace(labels={k: v for k, v in sample.labels.items() if v})
            for sample in family.samples
        ]
        return family


# The workers' figures, in the order of a scrape (``trialledger_readings_up`` last).
_FAMILIES = (
    _Family("relay_lag", GaugeMetricFamily, "trialledger_relay_lag_events",
        "Committed events of the store not yet acknowledged by Kafka.", ("topic",)),
    _Family("relay_oldest_unpublished", GaugeMetricFamily,
        "trialledger_relay_oldest_unpublished_seconds",
        "Age of the oldest stored event not yet published (0: none waiting).", ("topic",)),
    _Family("relay_quarantined", GaugeMetricFamily, "trialledger_relay_quarantined_events",
        "Stored events the relay could not publish, held in quarantine.", ("topic",)),
    _Family("consumer_lag", GaugeMetricFamily, "trialledger_consumer_lag_messages",
        "Messages on a topic not yet consumed, by consumer group.", ("consumer", "topic")),
    _Family("dead_letters", GaugeMetricFamily, "trialledger_dead_letters",
        "Unreadable records kept in a consumer's dead-letter table.", ("consumer",)),
    _Family("consumed", CounterMetricFamily, "trialledger_consumed_messages",
        "Messages handled since the process started, by consumer and outcome.",
        ("consumer", "outcome")),
    _Family("signing_refused", GaugeMetricFamily, "trialledger_ledger_signing_refused",
        "1 while the ledger's self-check found entries it cannot vouch for (no checkpoint "
        "is signed); 0 otherwise.", ("consumer",)),
    _Family("witness_uncosigned", GaugeMetricFamily, "trialledger_witness_uncosigned_entries",
        "Ledger entries in the newest checkpoint not yet covered by a witness's "
        "cosignature, by study (none: the first study's ledger).", ("witness", "study")),
    _Family("witness_failing", GaugeMetricFamily, "trialledger_witness_failing",
        "1 while the last request to a witness failed (down, or it refused); 0 otherwise, "
        "by study (none: the first study's ledger).", ("witness", "study")),
)  # fmt: skip


class _Snapshot(Collector):
    """The workers' readings of the latest scrape, as Prometheus metric families."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.readings = Readings()
        self.failed = 0

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("trialledger_readings_up",
            "1 when every worker answered the last scrape, else 0.",
            labels=["service"])  # fmt: skip
        up.add_metric([self.service], 0 if self.failed else 1)
        return [*(f.metric(self.service, self.readings) for f in _FAMILIES), up]


class CorrelationAndMetrics(HttpMiddleware):
    """ASGI middleware: correlation id in, logged and out; one request counted."""

    def __init__(self, app: ASGIApp, observer: Observer) -> None:
        super().__init__(app)
        self.observer = observer

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        correlation_id = _incoming(scope) or str(uuid.uuid4())
        status = 500  # unless the app starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = correlation_id
            await send(message)

        started = time.perf_counter()
        with correlated(correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                # the router leaves the matched route in the scope: count its template,
                # never the raw path (one series per subject id would never end)
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                elapsed = time.perf_counter() - started
                self.observer.observe_request(scope["method"], route, status, elapsed)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER.encode():
            text = value.decode("latin-1")
            return text if _PLAIN_ID.fullmatch(text) else None
    return None


@dataclass
class Readiness:
    """Whether the database and Kafka answer and the workers keep up, checked at most every
    ``cache`` seconds (a load balancer polling often does not open a connection per poll)."""

    database: DatabaseSettings
    bootstrap: str
    workers: Sequence[Checked] = ()
    timeout: float = 2.0
    cache: float = 2.0

    def __post_init__(self) -> None:
        self._lock = asyncio.Lock()
        self._checked_at = float("-inf")
        self._last: dict[str, str] = {}

    async def check(self) -> dict[str, str]:
        """``{"database": "ok" | reason, "kafka": "ok" | reason, <worker check>: ...}``."""
        async with self._lock:
            if time.monotonic() - self._checked_at >= self.cache:
                database, kafka = await asyncio.gather(
                    _outcome(self._database(), self.timeout), _outcome(self._kafka(), self.timeout)
                )
                workers = await asyncio.gather(*(self._worker(w) for w in self.workers))
                self._last = {"database": database, "kafka": kafka}
                for found in workers:
                    self._last.update(found)
                self._checked_at = time.monotonic()
            return dict(self._last)

    async def _worker(self, worker: Checked) -> dict[str, str]:
        """The worker's own checks; a worker that cannot tell is not ready either."""
        try:
            return await asyncio.wait_for(worker.problems(), self.timeout * 2)
        except TimeoutError:
            return {type(worker).__name__.lower(): f"no answer within {self.timeout * 2:g}s"}
        except Exception as error:  # the reason is the answer
            return {type(worker).__name__.lower(): f"{type(error).__name__}: {error}"[:300]}

    async def _database(self) -> None:
        connection = await asyncpg.connect(self.database.dsn, timeout=self.timeout)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    async def _kafka(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout * 1000)
        )
        try:
            await admin.start()  # bootstraps: asks a broker for the cluster's metadata
        finally:
            await admin.close()


async def _outcome(check: Coroutine[Any, Any, None], timeout: float) -> str:
    try:
        await asyncio.wait_for(check, timeout)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except Exception as error:  # the reason is the answer; the DSN is never in it
        return f"{type(error).__name__}: {error}"[:300]
    return "ok"
