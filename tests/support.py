"""Test helpers: sample screenings, commands, and reading a real topic back."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.enrollment.domain import Consent, Screening
from services.enrollment.rules import Observation
from shared.adapters.eventstore import ServiceApplication, postgres_env
from shared.adapters.outbox import Outbox
from shared.adapters.topics import ensure_service_topic
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Actor, Attribution, Meaning, Provenance, Role
from shared.kernel.publication import Publication
from shared.kernel.settings import DatabaseSettings, ServiceSettings
from shared.kernel.signatures import RecordSigner
from shared.web.auth import Principal, SigningAssertion, TokenIssuer, TokenVerifier

ApplicationT = TypeVar("ApplicationT", bound=ServiceApplication)
_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now and that this process has not
    handed out before: the kernel may give one free port to two probes in a row, and two
    services started on one port would answer each other's health checks."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


class Pooled(Protocol):
    """A store on a connection pool of its own: a view, the ledger."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


PooledT = TypeVar("PooledT", bound=Pooled)

MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}  # eventsourcing's in-memory store
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

# Real keys, made for the test run: tokens and signatures are verified for real.
TOKEN_KEY = Ed25519PrivateKey.generate()
ISSUER = TokenIssuer(TOKEN_KEY)
VERIFIER = TokenVerifier(TOKEN_KEY.public_key())
RECORD_KEY = Ed25519PrivateKey.generate()
SIGNER = RecordSigner(RECORD_KEY)
CONSENT_DAY = date(2026, 11, 2)
SCREENING_DAY = date(2026, 11, 5)
INVESTIGATOR = Actor("u-inv-1", "Dr Lin Wei", "investigator", "ZJU-1")


class Running:
    """A worker's ``run`` as a task that can be crashed (cancelled) or stopped."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(worker.run(self.stopping))

    async def crash(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, timeout=30)


def identity_event(event_type: str, at: datetime, **data: Any) -> CloudEvent:
    """An event as the identity service publishes it, with only the ``data`` fields a test
    names (the readers of identity's topic take what they need)."""
    return CloudEvent(
        id=uuid.uuid4(),
        source="/trial-ledger/identity",
        type=event_type,
        time=at,
        recordedtime=at,
        sequence="1",
        correlationid="c-1",
        data=data,
    )


def as_published(application: ServiceApplication, publication: Publication) -> list[CloudEvent]:
    """Every event ``application`` stored, as its relay publishes them: mapped to their
    contract and enveloped with the study it recorded, in notification order."""
    log = application.notification_log
    events: list[CloudEvent] = []
    while batch := log.select(len(events) + 1, log.section_size):
        for n in batch:
            event = application.mapper.to_domain_event(n)
            study = publication.study(event)
            events.append(CloudEvent.wrap(publication.to_contract(event), n.id, study_id=study))
    return events


@contextmanager
def on_postgres(
    factory: Callable[..., ApplicationT], settings: ServiceSettings, **options: Any
) -> Iterator[ApplicationT]:
    """A service application on the real PostgreSQL, in ``settings``' schema; closed after."""
    application = factory(env=postgres_env(settings.database), **options)
    try:
        yield application
    finally:
        application.close()


def finished(
    argv: Sequence[str], timeout: float, exits: Collection[int] = (0,), **options: Any
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end as its own process, its output taken as text; it must exit
    with one of ``exits``, or its output is the failure's message."""
    done = subprocess.run(  # noqa: S603 (our interpreter, tools and arguments; no shell)
        list(argv), capture_output=True, text=True, check=False, timeout=timeout, **options
    )
    assert done.returncode in exits, done.stdout + done.stderr
    return done


@asynccontextmanager
async def opened(store: PooledT) -> AsyncIterator[PooledT]:
    """``store`` opened, and closed afterwards (if the test failed too)."""
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def stored_count(application: ServiceApplication, event_class: type) -> int:
    """How many events of ``event_class`` the application's store holds."""
    return sum(1 for _, event in application.stored_events() if isinstance(event, event_class))


@asynccontextmanager
async def asgi_client(app: Any, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` served in this process (``httpx.ASGITransport``)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        yield client


def memory_outbox(application: ServiceApplication, publication: Publication) -> Outbox:
    """The outbox of an in-memory application, for HTTP tests that never read the store's
    head (it needs PostgreSQL)."""
    nowhere = DatabaseSettings("127.0.0.1", 9, "nobody", "unused", "unused")
    return Outbox(application, publication, nowhere, "tests.in-memory")


def command(now: datetime = NOW, actor: Actor = INVESTIGATOR) -> Attribution:
    return Attribution(Provenance(actor, correlation_id="corr-1", client_id="tests"), now)


def principal(*roles: Role, user_id: str = "u-inv-1", session_id: str = "session-1") -> Principal:
    return Principal(
        user_id,
        INVESTIGATOR.printed_name,
        "ZJU-1",
        frozenset(roles or {Role.INVESTIGATOR}),
        session_id,
    )


def bearer(who: Principal | None = None) -> dict[str, str]:
    """Headers of a request by ``who`` (an investigator by default), with a fresh token."""
    token, _ = ISSUER.access_token(who or principal(), datetime.now(UTC))
    return {
        "Authorization": f"Bearer {token}",
        "X-Correlation-Id": "corr-http-1",
        "X-Client-Id": "tests",
    }


def signing(
    meaning: Meaning, who: Principal | None = None, purpose: str = "tests"
) -> SigningAssertion:
    who = who or principal()
    return SigningAssertion(
        "assertion-1",
        who.user_id,
        who.printed_name,
        who.session_id,
        meaning,
        purpose,
        datetime.now(UTC),
        who.study_id,  # an assertion signs in its token's study only
    )


def signature_json(meaning: Meaning, purpose: str, who: Principal | None = None) -> dict[str, str]:
    token, _ = ISSUER.signing_assertion(signing(meaning, who, purpose))
    return {"assertion": token}


def consent(signed_on: date = CONSENT_DAY) -> Consent:
    return Consent("ICF v2.1", signed_on, "Dr Lin Wei")


def eligible_observations(day: date = SCREENING_DAY) -> dict[str, Observation]:
    """A screening that meets every criterion, each value comfortably inside its limit."""

    def flag(present: bool) -> Observation:
        return Observation(present, day)

    return {
        "cd19_bcma_positive": flag(True),
        "refractory_disease": flag(True),
        "estimated_survival": Observation(Decimal(52), day, "weeks"),
        "pregnancy_test": Observation("negative", day),
        "contraception_agreed": flag(True),
        "platelets": Observation(Decimal(180), day, "10^9/L"),
        "lymphocytes_absolute": Observation(Decimal("1.6"), day, "10^9/L"),
        "cns_history": flag(False),
        "heart_disease_or_prolonged_qt": flag(False),
        "pregnant_or_lactating": flag(False),
        "severe_active_infection": flag(False),
        "active_hepatitis_b_or_c": flag(False),
        "hiv_infection": flag(False),
        "systemic_steroids": Observation(None, day),
        "creatinine": Observation(Decimal("0.8"), day, "mg/dL"),
        "alt": Observation(Decimal(30), day, "U/L", Decimal(40)),
        "ast": Observation(Decimal(28), day, "U/L", Decimal(40)),
        "bilirubin": Observation(Decimal("0.6"), day, "mg/dL"),
        "other_uncontrolled_disease": flag(False),
        "investigator_judged_risk": flag(False),
    }


def screening(**changes: Observation) -> Screening:
    return Screening(SCREENING_DAY, {**eligible_observations(), **changes})


def observation_json(observation: Observation) -> dict[str, Any]:
    """An observation as a client sends it over HTTP."""
    value: Any = observation.value
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, date):
        value = value.isoformat()
    return {
        "value": value,
        "unit": observation.unit,
        "upper_limit_normal": None
        if observation.upper_limit_normal is None
        else str(observation.upper_limit_normal),
        "observed_on": observation.observed_on.isoformat(),
    }


def screening_json(observations: dict[str, Observation] | None = None) -> dict[str, Any]:
    observations = observations or eligible_observations()
    return {
        "screened_on": SCREENING_DAY.isoformat(),
        "observations": {code: observation_json(o) for code, o in observations.items()},
    }


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0, distinct: bool = False
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from its start with a plain consumer until ``expected`` records came
    (``distinct``: records with different values, so that redeliveries do not count).

    Fails (does not hang) after ``timeout`` seconds with what it has read.
    """
    # Without a group id the consumer takes every partition of the topic itself.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout

        def count() -> int:
            return len({r.value for r in records}) if distinct else len(records)

        while count() < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        assert count() >= expected, f"read {count()} of {expected} from {topic}"
        return records
    finally:
        await consumer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Wait until ``check`` holds, failing after ``timeout`` seconds (not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not hold within {timeout}s")


async def at_once(
    times: int, request: Callable[[], Awaitable[httpx.Response]]
) -> list[httpx.Response]:
    """The same request sent ``times`` times concurrently (through ``httpx.ASGITransport``
    the service's sync endpoints then run on parallel threads, as under uvicorn)."""
    return list(await asyncio.gather(*(request() for _ in range(times))))


async def logged_in(identity: httpx.AsyncClient, user_id: str, password: str) -> dict[str, str]:
    """The bearer header of a login through the identity service's HTTP API."""
    response = await identity.post("/login", json={"user_id": user_id, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def one_success_and_conflicts(responses: list[httpx.Response], success: int) -> list[str]:
    """Exactly one answer is ``success``, every other a coded 409; returns the 409s' codes."""
    statuses = [r.status_code for r in responses]
    assert statuses.count(success) == 1, [(r.status_code, r.text) for r in responses]
    conflicts = [r for r in responses if r.status_code != success]
    assert all(r.status_code == 409 for r in conflicts), [r.text for r in conflicts]
    assert all(set(r.json()) == {"code", "message", "details"} for r in conflicts)
    return [r.json()["code"] for r in conflicts]


PARALLEL = 10  # how many identical commands the concurrency tests send at once


async def parallel_conflicts(
    request: Callable[[], Awaitable[httpx.Response]], success: int, times: int = PARALLEL
) -> set[str]:
    """``request`` sent ``times`` times at once (``at_once``): exactly one answer is
    ``success``, every other a coded 409 (``one_success_and_conflicts``); the 409s' codes."""
    return set(one_success_and_conflicts(await at_once(times, request), success))


@asynccontextmanager
async def isolated(service: str, env: dict[str, str]) -> AsyncIterator[ServiceSettings]:
    """A service's settings with a schema and a topic of their own, dropped afterwards."""
    topic = f"test.{service}.{uuid.uuid4().hex[:10]}"
    async with own_schema(service, {**env, f"TL_{service.upper()}_TOPIC": topic}) as settings:
        await ensure_service_topic(settings)
        yield settings


@asynccontextmanager
async def own_schema(service: str, env: dict[str, str]) -> AsyncIterator[ServiceSettings]:
    """A service's settings with a database schema of its own, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:10]}"
    env = {**env, f"TL_{service.upper()}_DATABASE_SCHEMA": schema}
    settings = ServiceSettings.from_env(service, env)
    await _execute(settings.database, f'CREATE SCHEMA "{schema}"')
    try:
        yield settings
    finally:
        await _execute(settings.database, f'DROP SCHEMA "{schema}" CASCADE')


async def _execute(database: DatabaseSettings, statement: str) -> None:
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
