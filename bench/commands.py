"""Commands through HTTP on the real stack, against the bare event-store save.

    python -m bench.commands [--clients 20] [--commands 2000] [--processes 1]

The real enrollment app (``services.enrollment.api.create_app``) is served by
``shared.web.runner.serve``, as the service serves it, in ``--processes`` processes of
its own on one free port (``TL_<SERVICE>_HTTP_PROCESSES``), over the real PostgreSQL (a
fresh schema of the enrollment database, dropped at the end), with the check of withdrawn
access every request with a token passes in production (a revocations view fed from a
fresh topic, standing in for identity's, and its feed checking the broker). The relay is
not run: it reads the store after the commands, off their path. ``--clients``
investigators (the Go load generator, ``bench.loadgen``: a client in Python cost the two
cores more than the server did) each take their own subjects through registration,
consent (signed), screening, and two corrections of a screening value, with access
tokens and signing assertions of the project's token issuer (``tests.support``),
verified for real.

The **baseline**, in the same run: the same number of events of the same kinds, made
by the same commands on an in-memory application, saved with eventsourcing's
``Application.save`` (one save per command, from ``--clients`` threads) into a fresh
schema of the same database: what any command must pay to store its event.

Reported per command type: count, p50 and p99 latency (ms), throughput (commands/s);
the ratio is the throughput over the baseline's.

The **floor**, in the same run and through the same server and clients: as many
``GET /health`` requests (no token, no store: uvicorn, the middleware and FastAPI's
routing only). It is the least any request costs on this machine at this concurrency:
a command cannot answer faster than the floor's latency at the same number of clients.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date
from multiprocessing import get_context
from multiprocessing.synchronize import Event as EventType
from typing import Any

import httpx

from bench import loadgen
from bench.common import bench_settings, progress
from bench.loadgen import Latencies, Request
from services.enrollment.api import create_app, signing_purpose
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from services.enrollment.rules import Observation
from shared.adapters.eventstore import postgres_env
from shared.adapters.outbox import Outbox
from shared.adapters.revocations import RevocationFeed, RevocationView
from shared.adapters.subject_views import Subscriptions, kafka_broker
from shared.kernel.provenance import Meaning
from shared.kernel.settings import ServiceSettings
from shared.web.runner import serve
from shared.web.service_app import Serving
from shared.web.service_main import subscribe_revocations
from tests.support import (
    CONSENT_DAY,
    MEMORY,
    SIGNER,
    VERIFIER,
    bearer,
    command,
    consent,
    eligible_observations,
    free_port,
    observation_json,
    screening,
    screening_json,
    signature_json,
    signing,
)

# registration, consent (signed: screening needs it), screening, two corrections
COMMANDS = (
    "register_subject",
    "sign_consent",
    "record_screening",
    "correct_value",
    "correct_value",
)
COMMANDS_PER_SUBJECT = len(COMMANDS)
STEROIDS = "systemic_steroids"


def subject_ids(clients: int, subjects: int) -> list[list[str]]:
    """Each client's own subjects (distinct across clients and runs' schemas)."""
    return [[f"C{c:02d}-{n:05d}" for n in range(c, subjects, clients)] for c in range(clients)]


def corrections() -> tuple[Observation, Observation]:
    """The two corrections of a subject: a steroid dose found in the notes, then undone."""
    steroid = eligible_observations()[STEROIDS]
    return Observation(date(2026, 10, 1), steroid.observed_on), steroid


# --- the clients (a process of their own) --------------------------------------------------


def requests(subjects: list[list[str]]) -> list[list[Request]]:
    """Each client's requests, in order (made here: the signing assertions come from the
    token issuer of this process, whose key the server trusts)."""
    return [[step for subject in own for step in _steps(subject)] for own in subjects]


def _steps(subject: str) -> list[Request]:
    dated, undone = corrections()
    path = f"/subjects/{subject}"
    signature = signature_json(Meaning.RESPONSIBILITY, signing_purpose("consent", subject))
    consent = {"form_version": "ICF v2.1", "signed_on": CONSENT_DAY.isoformat(),
               "obtained_by": "Dr Lin Wei", "signature": signature}  # fmt: skip
    return [
        Request("register_subject", "/subjects", {"subject_id": subject, "site_id": "ZJU-1"}),
        Request("sign_consent", f"{path}/consent", consent),
        Request("record_screening", f"{path}/screening", screening_json()),
        *(Request("correct_value", f"{path}/corrections", _correction(v)) for v in (dated, undone)),
    ]


def floor_requests(requests: list[list[Request]]) -> list[list[Request]]:
    """As many ``GET /health`` as each client has commands."""
    return [[Request("GET /health", "/health")] * len(own) for own in requests]


def _correction(value: Observation) -> dict[str, Any]:
    return {
        "field": f"screening.{STEROIDS}",
        "new_value": observation_json(value),
        "reason": "source document verification",
    }


# --- the server (this process) -------------------------------------------------------------


@asynccontextmanager
async def withdrawn_access(settings: ServiceSettings) -> AsyncIterator[RevocationFeed]:
    """The revocations view and its feed, kept as a service keeps them, from
    ``settings.topic`` (fresh and empty: standing in for identity's topic)."""
    feed = RevocationFeed(RevocationView(settings.database), settings.kafka_bootstrap,
                          settings.topic, f"{settings.topic}-revocations")  # fmt: skip
    await feed.view.open()
    broker = kafka_broker(settings.kafka_bootstrap)
    subscribe_revocations(broker, feed)
    stopping = asyncio.Event()
    running = [asyncio.create_task(Subscriptions(broker).run(stopping)),
               asyncio.create_task(feed.run(stopping))]  # fmt: skip
    try:
        yield feed
    finally:
        stopping.set()
        await asyncio.gather(*running)
        await feed.view.close()


async def through_http(
    settings: ServiceSettings, requests: list[list[Request]], processes: int
) -> tuple[Latencies, Latencies]:
    """The floor, then the commands, through the real app served by ``processes``
    processes of their own on one port, as ``TL_ENROLLMENT_HTTP_PROCESSES`` serves it."""
    port = free_port()
    served = replace(settings, http_host="127.0.0.1", http_port=port, http_processes=processes)
    # forked, not spawned: the servers trust this process's token and signing keys
    # (tests.support makes them at import), which a fresh interpreter would make anew
    fork = get_context("fork")
    servers, url = [], f"http://127.0.0.1:{port}"
    try:
        for _ in range(processes):  # one after another: the first makes the store's tables
            started = fork.Event()
            servers.append(fork.Process(target=serve_enrollment, args=(served, started)))
            servers[-1].start()
            if not await asyncio.to_thread(started.wait, 120):
                raise RuntimeError("the enrollment server did not start within 120 s")
        await ready(url)
        floor = await loadgen.drive(url, bearer(), floor_requests(requests))
        return floor, await loadgen.drive(url, bearer(), requests)
    finally:
        for server in servers:
            server.terminate()
            server.join(30)


def serve_enrollment(settings: ServiceSettings, started: EventType) -> None:
    """One server process: the enrollment app over the bench's store, with the revocation
    check every request with a token passes, served by ``shared.web.runner.serve``."""

    async def main() -> None:
        application = EnrollmentApplication(env=postgres_env(settings.database), signer=SIGNER)
        outbox = Outbox.of(application, PUBLICATION, settings)
        async with withdrawn_access(settings) as revocations:
            app = create_app(application, Serving(VERIFIER, outbox, revocations=revocations))
            started.set()
            await serve(settings, app)

    logging.disable(logging.INFO)  # the servers' request and Kafka logs are not the report
    asyncio.run(main())


async def ready(url: str) -> None:
    """Until the servers answer a command's token (they refuse one, 503, until they have
    read the withdrawals of access once)."""
    async with httpx.AsyncClient(base_url=url, headers=bearer()) as client:
        for _ in range(600):
            try:
                if (await client.get("/subjects/none-yet")).status_code != 503:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
    raise RuntimeError("the enrollment servers did not become ready within 60 s")


# --- the baseline ------------------------------------------------------------------------


Saved = tuple[str, list[Any]]  # a command, and the events it saved at once


def same_events(subjects: list[list[str]]) -> list[list[Saved]]:
    """Each client's commands with the events each saved (a signed step saves two: the
    step and its signature), made by the same commands on an in-memory application."""
    app = EnrollmentApplication(signer=SIGNER, env=MEMORY)

    def saved(name: str, run: Callable[[], object]) -> Saved:
        after = app.recorder.max_notification_id() or 0
        run()
        new = app.recorder.select_notifications(start=after + 1, limit=COMMANDS_PER_SUBJECT)
        return name, [app.mapper.to_domain_event(n) for n in new]

    return [
        [saved(name, run) for subject in own for name, run in _commands(app, subject)]
        for own in subjects
    ]


def _commands(app: EnrollmentApplication, subject: str) -> list[tuple[str, Callable[[], object]]]:
    dated, undone = corrections()
    field_name = f"screening.{STEROIDS}"
    return [
        ("register_subject", lambda: app.register_subject(subject, "ZJU-1", command())),
        ("sign_consent", lambda: app.sign_consent(
            subject, consent(), command(), signing(Meaning.RESPONSIBILITY))),
        ("record_screening", lambda: app.record_screening(subject, screening(), command())),
        *(("correct_value", lambda v=value: app.correct_value(
            subject, field_name, v, "source documents", command())) for value in (dated, undone)),
    ]  # fmt: skip


def saved_bare(settings: ServiceSettings, events: list[list[Saved]]) -> Latencies:
    """``Application.save`` of each event, one save per command, from a thread per client."""
    application = EnrollmentApplication(env=postgres_env(settings.database), signer=SIGNER)
    latencies = Latencies()

    def client(own: list[Saved]) -> None:
        for name, saved in own:
            started = time.perf_counter()
            application.save(*saved)
            latencies.add(name, started)

    try:
        with ThreadPoolExecutor(len(events)) as threads:
            start = time.perf_counter()
            list(threads.map(client, events))
            latencies.seconds = time.perf_counter() - start
    finally:
        application.close()
    return latencies


# --- the report ----------------------------------------------------------------------------


def rows(name: str, latencies: Latencies) -> Iterator[tuple[str, int, float, float, float]]:
    """(measurement, count, p50 ms, p99 ms, commands/s over the run's wall time)."""
    every = [t for times in latencies.by_command.values() for t in times]
    yield name, len(every), *_percentiles(every), len(every) / latencies.seconds
    for command_type, times in sorted(latencies.by_command.items()):
        yield f"  {command_type}", len(times), *_percentiles(times), len(times) / latencies.seconds


def _percentiles(times: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def report(clients: int, baseline: Latencies, floor: Latencies, http: Latencies) -> None:
    """A line per measurement and per command type; the ratio is its throughput over the
    baseline's for the same command type (the baseline's total for the totals)."""
    base = {label.strip(): rate for label, *_, rate in rows("all", baseline)}
    print(f"commands: {clients} clients, ratio = throughput / the baseline's")
    print(f"{'measurement':<34} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'rate/s':>9} "
          f"{'ratio':>7}")  # fmt: skip
    measured = (("baseline: Application.save", baseline), ("floor: GET /health", floor),
                ("HTTP commands", http))  # fmt: skip
    for name, latencies in measured:
        for label, count, p50, p99, rate in rows(name, latencies):
            ratio = rate / base.get(label.strip(), base["all"])
            print(f"{label:<34} {count:>7} {p50:>8.1f} {p99:>8.1f} {rate:>9.1f} {ratio:>7.3f}",
                  flush=True)  # fmt: skip


async def run(clients: int, commands: int, processes: int) -> None:
    subjects = subject_ids(clients, -(-commands // COMMANDS_PER_SUBJECT))
    progress(f"making the baseline's {commands} events in memory")
    events = same_events(subjects)
    async with bench_settings(service="enrollment") as settings:
        progress(f"baseline: Application.save in schema {settings.database.schema}")
        baseline = await asyncio.to_thread(saved_bare, settings, events)
    async with bench_settings(topic=True, service="enrollment") as settings:
        progress(f"HTTP: {clients} clients, {processes} server process(es), "
                 f"schema {settings.database.schema}")  # fmt: skip
        floor, http = await through_http(settings, requests(subjects), processes)
    report(clients, baseline, floor, http)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--clients", type=int, default=20, help="concurrent clients (20)")
    arguments.add_argument("--commands", type=int, default=2000, help="commands in all (2000)")
    arguments.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes on the port (1; TL_<SERVICE>_HTTP_PROCESSES)",
    )
    options = arguments.parse_args()
    asyncio.run(run(options.clients, options.commands, options.processes))


if __name__ == "__main__":
    main()
