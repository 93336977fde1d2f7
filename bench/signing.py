"""Logins and signing re-authentications under load: 20 concurrent users through the
identity HTTP app on the real PostgreSQL, against the bare argon2id checks the password
pool can make in the same run.

    python -m bench.signing [--rounds 10]

A fresh schema of the identity database holds 20 investigators and a victim account,
made untimed. The real app (``services.identity.api.create_app``, with the password
settings of the environment: ``TL_PASSWORD_WORKERS`` ...) is served in this process
through ``httpx.ASGITransport``. Then, timed:

- baseline: bare ``argon2`` verification of a hash with the service's parameters, on as
  many threads as the pool has (``workers``), in a loop, half before the requests and half
  after (the machine is shared: its load moves): the rate no password check can beat. With
  20 users each sending a request as soon as the last is answered, a request cannot take
  less than 20 / that rate on average (Little's law): the ideal latency;
- logins of one user alone: ``rounds`` logins one after the other (what an attempt costs
  beside its hash: the account read twice, the save);
- logins: each user logs in ``rounds`` times, the 20 side by side (closed loop: each sends
  its next request when its last is answered);
- signings: the same with ``POST /signing`` (id and password), in the users' sessions;
- signings under a flood: the same while 10 clients of another address send wrong
  passwords for the victim account, each every 0.1 s (about 100 a second: the clients
  share this process's event loop and GIL with the server, so a faster flood measures
  them more than the server).

Each line: count, seconds, rate/s and its ratio to the baseline's rate, p50 and p99 of the
requests' latencies. The load average is printed before and after.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from bench.common import Measurement, bench_settings, main, progress
from services.identity.api import PasswordChecks, create_app
from services.identity.application import IdentityApplication
from services.identity.passwords import HASHER
from services.identity.publication import PUBLICATION
from shared.adapters.eventstore import postgres_env
from shared.adapters.outbox import Outbox
from shared.kernel.provenance import Actor, Attribution, Provenance, Role
from shared.kernel.settings import PasswordCheckSettings, ServiceSettings
from shared.web.service_app import Serving
from tests.support import ISSUER, VERIFIER

USERS = 20
FLOODERS = 10
FLOOD_PAUSE = 0.1  # seconds between a flooder's requests
PASSWORD = "bench-signing-2026!"  # noqa: S105 (the bench's own accounts)
VICTIM = "victim.account"
Request = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Timed:
    """A measurement and its requests' latencies (seconds)."""

    measurement: Measurement
    latencies: list[float]

    def joined(self, other: Timed) -> Timed:
        """This and ``other`` as one measurement (a baseline taken before and after)."""
        mine, theirs = self.measurement, other.measurement
        both = Measurement(
            f"{mine.name} (before, after)", mine.count + theirs.count, mine.seconds + theirs.seconds
        )
        return Timed(both, self.latencies + other.latencies)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def baseline(workers: int, checks: int) -> Timed:
    """``checks`` bare verifications of one hash with the service's parameters, ``workers``
    at a time."""
    stored = HASHER.hash(PASSWORD)
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        latencies = list(pool.map(lambda _: _verify(stored), range(checks)))
        seconds = time.perf_counter() - start
    return Timed(
        Measurement(f"baseline: bare argon2 verify, {workers} threads", checks, seconds), latencies
    )


def _verify(stored: str) -> float:
    start = time.perf_counter()
    HASHER.verify(stored, PASSWORD)
    return time.perf_counter() - start


async def concurrently(
    name: str, client: httpx.AsyncClient, users: list[str], rounds: int, request: Request
) -> Timed:
    """Each of ``users`` sends ``request`` ``rounds`` times, all side by side; every answer
    must be a 200."""
    latencies: list[float] = []

    async def user(user_id: str) -> None:
        for _ in range(rounds):
            start = time.perf_counter()
            response = await request(client, user_id)
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: {user_id} answered {response.text}")

    start = time.perf_counter()
    await asyncio.gather(*(user(user_id) for user_id in users))
    return Timed(Measurement(name, len(latencies), time.perf_counter() - start), latencies)


async def log_in(client: httpx.AsyncClient, user_id: str) -> httpx.Response:
    return await client.post("/login", json={"user_id": user_id, "password": PASSWORD})


def signing(sessions: dict[str, dict[str, str]]) -> Request:
    """``POST /signing`` of a user, in their session (``sessions``: bearer headers)."""

    async def sign(client: httpx.AsyncClient, user_id: str) -> httpx.Response:
        body = {
            "meaning": "approval",
            "purpose": "bench/signing",
            "password": PASSWORD,
            "user_id": user_id,
        }
        return await client.post("/signing", json=body, headers=sessions[user_id])

    return sign


async def flooding(app: object, stop: asyncio.Event) -> dict[int, int]:
    """Wrong passwords for the victim from another address, until ``stop``: the statuses
    answered, counted."""
    answered: dict[int, int] = {}
    transport = httpx.ASGITransport(app=app, client=("192.0.2.66", 4321))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as attacker:

        async def flooder() -> None:
            while not stop.is_set():
                body = {"user_id": VICTIM, "password": "not the password"}
                status = (await attacker.post("/login", json=body)).status_code
                answered[status] = answered.get(status, 0) + 1
                await asyncio.sleep(FLOOD_PAUSE)

        await asyncio.gather(*(flooder() for _ in range(FLOODERS)))
    return answered


@asynccontextmanager
async def identity_app(
    settings: ServiceSettings, workers: int
) -> AsyncIterator[tuple[object, httpx.AsyncClient, list[str]]]:
    """The identity app on ``settings``' schema with its users (made ``workers`` at a time),
    and a client of it."""
    application = IdentityApplication(env=postgres_env(settings.database))
    try:
        users = [f"inv.bench{n:02d}" for n in range(USERS)]
        made = Attribution(
            Provenance(Actor("bench", "bench", "system", "B"), "bench"), datetime.now(UTC)
        )
        with ThreadPoolExecutor(workers) as pool:
            list(
                pool.map(
                    lambda user_id: application.create_user(
                        user_id, user_id, "B-1", frozenset({Role.INVESTIGATOR}), PASSWORD, made
                    ),
                    [*users, VICTIM],
                )
            )
        serving = Serving(VERIFIER, Outbox.of(application, PUBLICATION, settings))
        checks = PasswordChecks(PasswordCheckSettings.from_env())
        app = create_app(application, ISSUER, serving, checks)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity", timeout=120
        ) as client:
            yield app, client, users
        checks.pool.close()
    finally:
        application.close()


async def measure(rounds: int) -> list[Timed]:
    workers = PasswordCheckSettings.from_env().workers
    async with bench_settings(service="identity") as settings:
        progress(f"making {USERS + 1} accounts in schema {settings.database.schema}")
        async with identity_app(settings, workers) as (app, client, users):
            before = baseline(workers, USERS * rounds // 2)
            alone = await concurrently(
                "logins of one user alone", client, users[:1], rounds, log_in
            )
            logins = await concurrently("logins", client, users, rounds, log_in)
            sessions = {u: {"Authorization": f"Bearer {await _token(client, u)}"} for u in users}
            sign = signing(sessions)
            signings = await concurrently("signings", client, users, rounds, sign)
            stop = asyncio.Event()
            flood = asyncio.create_task(flooding(app, stop))
            flooded = await concurrently(
                "signings under a flood of wrong passwords", client, users, rounds, sign
            )
            stop.set()
            progress(f"the flood was answered (status: count) {await flood}")
            after = baseline(workers, USERS * rounds // 2)
    return [before.joined(after), alone, logins, signings, flooded]


async def _token(client: httpx.AsyncClient, user_id: str) -> str:
    return str((await log_in(client, user_id)).json()["access_token"])


def report(timings: list[Timed], workers: int) -> None:
    base = timings[0].measurement
    print(
        f"{'measurement':<56} {'count':>6} {'seconds':>8} {'rate/s':>8} {'ratio':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for timed in timings:
        m = timed.measurement
        print(
            f"{m.name:<56} {m.count:>6} {m.seconds:>8.2f} {m.rate:>8.1f} "
            f"{m.rate / base.rate:>6.3f} {timed.percentile(0.5) * 1000:>8.0f} "
            f"{timed.percentile(0.99) * 1000:>8.0f}"
        )
    print(
        f"# ideal latency of {USERS} users on {workers} workers: {USERS / base.rate * 1000:.0f} "
        f"ms; one bare verify (p50): {statistics.median(timings[0].latencies) * 1000:.0f} ms"
    )


async def run(rounds: int) -> None:
    progress(f"load average before: {_load()}")
    timings = await measure(rounds)
    report(timings, PasswordCheckSettings.from_env().workers)
    progress(f"load average after: {_load()}")


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    main(__doc__ or "", "--rounds", 10, run)
