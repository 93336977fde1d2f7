"""How soon a withdrawal of access ends a token in the other services.

    python -m bench.revocation [--rounds 40]

The real stack runs as processes (as ``tests/e2e/stack.py`` starts it), on the broker and
database of deploy/local. Each round creates an auditor, logs in, sees the token accepted by
enrollment and projections, then withdraws its access, in turn by each of the four ways:
lockout (``TL_MAX_FAILED_ATTEMPTS`` wrong passwords; the account's ``locked`` is then
checked, since a locked account answers a login as any wrong password does), deactivation,
role revocation and logout. The delay is the time from identity's answer to the
withdrawing request (the event is recorded by then) until *both* enrollment and
projections answer the token 401 ``token_revoked``; each is asked every ``WATCH``
seconds, so a figure is late by at most that. The path: identity's relay publishes the
event, each service's revocations view consumes it and writes its row, the next request
reads it.

Baseline, in the same run: a Kafka round trip (one record produced with acks=all and read
by a plain consumer), the part of the path no implementation avoids. The report gives p50
and p99 per kind and over all, and each as a multiple of the baseline's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import parser, progress
from bench.e2e import kafka_round_trips, report
from shared.kernel.settings import SecuritySettings, ServiceSettings
from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack, running_stack

WATCH = 0.005  # seconds between asks
PASSWORD = secrets.token_urlsafe(18)  # the bench accounts' own, never reused
KINDS = ("lockout", "deactivation", "role revocation", "logout")
SUBJECT = "BENCH-REV-1"


async def withdraw(stack: Stack, kind: str, user_id: str, token: dict[str, str]) -> float:
    """Withdraw ``user_id``'s access by ``kind``; returns when identity answered the
    withdrawing request (``time.perf_counter``)."""
    admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)
    if kind == "lockout":
        return await lock_out(stack, user_id, admin)
    if kind == "deactivation":
        answer = await stack.identity.post(
            f"/users/{user_id}/deactivation", json={"reason": "bench"}, headers=admin
        )
    elif kind == "role revocation":
        answer = await stack.identity.post(
            f"/users/{user_id}/role-revocations",
            json={"role": "monitor", "reason": "bench"},
            headers=admin,
        )
    else:
        answer = await stack.identity.post("/logout", headers=token)
    answered = time.perf_counter()
    if answer.status_code not in (200, 204):
        raise RuntimeError(f"{kind} of {user_id}: {answer.text}")
    return answered


async def lock_out(stack: Stack, user_id: str, admin: dict[str, str]) -> float:
    """The account's failed logins up to its lock; when the locking one was answered."""
    wrong = {"user_id": user_id, "password": "not the passphrase at all"}
    for _ in range(SecuritySettings.from_env(stack.env).max_failed_attempts):
        answer = await stack.identity.post("/login", json=wrong)
        answered = time.perf_counter()
        if answer.status_code != 401:
            raise RuntimeError(f"a wrong password for {user_id}: {answer.text}")
    account = await stack.identity.get(f"/users/{user_id}", headers=admin)
    if not account.json().get("locked"):
        raise RuntimeError(f"{user_id} did not lock: {account.text}")
    return answered


async def refused(clients: list[tuple[httpx.AsyncClient, str]], token: dict[str, str]) -> None:
    """Until every client answers ``token`` 401 ``token_revoked``."""
    waiting = list(clients)
    deadline = time.monotonic() + 60
    while waiting:
        client, path = waiting[0]
        answer = await client.get(path, headers=token)
        if answer.status_code == 401 and answer.json()["code"] == "token_revoked":
            waiting.pop(0)
        elif time.monotonic() > deadline:
            raise RuntimeError(f"not refused within 60 s: {path} {answer.text}")
        else:
            await asyncio.sleep(WATCH)


async def delays(stack: Stack, rounds: int) -> dict[str, list[float]]:
    """Seconds from each withdrawal's answer until both services refuse the token."""
    team = await stack.member("bench.rev.team", PASSWORD, "study_coordinator")
    body = {"subject_id": SUBJECT, "site_id": "ZJU-1"}
    registered = await stack.enrollment.post("/subjects", json=body, headers=team)
    if registered.status_code != 201:
        raise RuntimeError(f"registration: {registered.text}")
    clients = [(stack.enrollment, f"/subjects/{SUBJECT}"), (stack.projections, "/trial")]
    measured: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for n in range(rounds):
        kind = KINDS[n % len(KINDS)]
        user_id = f"bench.rev{n}"
        token = await stack.member(user_id, PASSWORD, "auditor", "monitor")
        for client, path in clients:
            answer = await client.get(path, headers=token)
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.text}")
        withdrawn = await withdraw(stack, kind, user_id, token)
        await refused(clients, token)
        measured[kind].append(time.perf_counter() - withdrawn)
    return measured


async def run(rounds: int) -> None:
    settings = ServiceSettings.from_env("enrollment")
    # lockouts spend wrong passwords from one address: lift its budget for the bench
    env = {**os.environ, "TL_ATTEMPTS_PER_ADDRESS": "100000"}
    with tempfile.TemporaryDirectory() as folder:
        progress("starting the stack (every service as a process)")
        async with running_stack(env, Path(folder)) as stack:
            progress(f"{rounds} Kafka round trips, then {rounds} withdrawals")
            base = await kafka_round_trips(settings, 1, max(rounds, 200))
            measured = await delays(stack, rounds)
    every = [delay for values in measured.values() for delay in values]
    report([("baseline: Kafka produce -> consume", base),
            *((f"{kind} -> refused by both", values)
              for kind, values in measured.items()),
            ("any withdrawal -> refused by both", every)], "revocation")  # fmt: skip


if __name__ == "__main__":
    arguments = parser(__doc__ or "", "--rounds", 40)
    given = arguments.parse_args()
    asyncio.run(run(given.rounds))
