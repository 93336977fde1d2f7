"""The fault suite's stack: the six real services as processes on the real broker and
database, with a short stall threshold, shared by every fault module (each case leaves it
healthy again), and the accounting every case ends with.

Accounting: every command a service acknowledged (2xx) is in the ledger; no event is in
it twice; every store is complete in ``verify`` and equal to the ledger in ``reconcile``.

A real litewitness cosigns the stack's checkpoints (as under ``make up``), registered
with the ledger's origin and checkpoint keys once projections serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from tests.e2e.stack import ServiceProcess, Stack, shared_stack
from tests.support import eventually
from tests.witness import Witness, running_witness

STALL_SECONDS = 5  # TL_STALL_SECONDS of this stack: how soon a stall must be visible
PASSWORD = "fault suite passphrase"
COMMAND_SERVICES = ("identity", "enrollment", "infusion", "adverse_events", "assessments")


@dataclass
class Faulty:
    """The stack and the sessions of the suite's users."""

    stack: Stack
    investigator: dict[str, str]
    auditor: dict[str, str]
    witness: Witness | None = None

    def process(self, name: str) -> ServiceProcess:
        return self.stack.processes[name]

    def token_reads(self) -> dict[str, tuple[httpx.AsyncClient, str]]:
        """A read the auditor's token may make, in each service (its access checked)."""
        return {
            "identity": (self.process("identity").client, "/users/fault.aud"),
            "enrollment": (self.process("enrollment").client, "/subjects/NONE-1"),
            "projections": (self.process("projections").client, "/trial"),
        }

    async def ledger(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of the projections database (the ledger's own tables)."""
        database = self.stack.projections_settings.database
        connection = await asyncpg.connect(database.dsn)
        try:
            await connection.execute(f'SET search_path TO "{database.schema}"')
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    async def registered_in_ledger(self) -> set[str]:
        rows = await self.ledger("SELECT subject_id FROM ledger_entries "
                                 "WHERE event_type = 'SubjectRegistered.v1'")  # fmt: skip
        return {r["subject_id"] for r in rows}

    async def refresh(self) -> None:
        """New tokens: a case may outlast the access tokens' lifetime."""
        self.investigator = await self.stack.log_in("fault.inv", PASSWORD)
        self.auditor = await self.stack.log_in("fault.aud", PASSWORD)

    async def ready(self, name: str) -> tuple[int | None, dict[str, Any]]:
        """``/ready`` of a service: its status and checks (None: it does not answer)."""
        try:
            response = await self.process(name).client.get("/ready", timeout=10)
        except httpx.TransportError as error:
            return None, {"error": repr(error)}
        return response.status_code, response.json().get("checks", {})

    async def metric(self, name: str, metric: str, **labels: str) -> float | None:
        text = (await self.process(name).client.get("/metrics", timeout=10)).text
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        for line in text.splitlines():
            if line.startswith(metric + "{") and all(label in line for label in wanted):
                return float(line.rsplit(" ", 1)[1])
        return None

    async def all_ready(self, timeout: float = 90) -> None:
        """Every service answers 200 on ``/ready`` (recovery needs no manual step)."""
        for name in self.stack.processes:
            last: list[object] = []

            async def ready(name: str = name, last: list[object] = last) -> bool:
                last[:] = await self.ready(name)
                return last[0] == 200

            try:
                await eventually(ready, timeout=timeout, what=f"{name} ready again")
            except AssertionError as error:  # say which check stayed red
                raise AssertionError(f"{error}: last /ready {last}") from None

    async def settled(self, acknowledged: Iterable[str], timeout: float = 120) -> None:
        """Every acknowledged registration in the ledger, nothing twice, every store
        complete and equal to the ledger."""
        await self.refresh()
        wanted = set(acknowledged)

        async def arrived() -> bool:
            return wanted <= await self.registered_in_ledger()

        await eventually(arrived, timeout=timeout, what=f"{len(wanted)} acknowledged in ledger")
        doubled = await self.ledger(
            "SELECT record_id, record_version, count(*) FROM ledger_entries "
            "GROUP BY record_id, record_version HAVING count(*) > 1"
        )
        assert not doubled, f"events in the ledger twice: {doubled}"

        async def complete() -> bool:
            verified = (await self.stack.projections.get("/verify", headers=self.auditor)).json()
            assert verified["ok"], verified
            return all(s["in_flight"] == 0 for s in verified["stores"])

        await eventually(complete, timeout=timeout, what="every store complete in verify")
        reconciled = (await self.stack.projections.get("/reconcile", headers=self.auditor)).json()
        assert reconciled["ok"], reconciled["differences"]


@contextlib.asynccontextmanager
async def faulty_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, **settings: str
) -> AsyncIterator[Faulty]:
    """The six services with extra ``TL_*`` ``settings``, a witness cosigning their
    checkpoints, and the suite's investigator and auditor logged in."""
    settings = {"TL_STALL_SECONDS": str(STALL_SECONDS), "TL_QUARANTINE_RETRY_SECONDS": "3",
                **settings}  # fmt: skip
    async with contextlib.AsyncExitStack() as running:
        witness = await running.enter_async_context(
            running_witness(tmp_path_factory.mktemp(f"{name}-witness"))
        )
        settings |= {"TL_WITNESS_URL": witness.url, "TL_WITNESS_VKEY": witness.vkey}
        stack = await running.enter_async_context(shared_stack(tmp_path_factory, name, **settings))
        published = (await stack.projections.get("/checkpoints", params={"limit": 1})).json()
        await witness.register(published["origin"], published["vkeys"])
        await stack.create_user("fault.inv", PASSWORD, "investigator")
        await stack.create_user("fault.aud", PASSWORD, "auditor")
        faulty = Faulty(stack, {}, {}, witness)
        await faulty.refresh()
        yield faulty


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def faulty(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Faulty]:
    async with faulty_stack(tmp_path_factory, "faults") as stack:
        yield stack


@dataclass
class Load:
    """Registrations through enrollment's HTTP API from a few concurrent clients, until
    stopped; every subject the service acknowledged (201) is kept."""

    faulty: Faulty
    prefix: str
    workers: int = 3
    acknowledged: set[str] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _next: int = 0

    def start(self) -> Load:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        return self

    async def stop(self) -> set[str]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.acknowledged

    async def until(self, count: int, timeout: float = 60) -> None:
        async def enough() -> bool:
            return len(self.acknowledged) >= count

        await eventually(enough, timeout=timeout, what=f"{count} registrations acknowledged")

    async def _worker(self) -> None:
        url = f"http://127.0.0.1:{self.faulty.process('enrollment').port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while not self._stop.is_set():
                self._next += 1
                subject = f"{self.prefix}-{self._next}"
                body = {"subject_id": subject, "site_id": "ZJU-1"}
                try:
                    answer = await client.post(
                        "/subjects", json=body, headers=self.faulty.investigator
                    )
                except httpx.TransportError as error:
                    self.outcomes[type(error).__name__] += 1
                    await asyncio.sleep(0.2)
                    continue
                self.outcomes[str(answer.status_code)] += 1
                if answer.status_code == 201:
                    self.acknowledged.add(subject)
                else:
                    await asyncio.sleep(0.2)


def log_lines_since(process: ServiceProcess, offset: int) -> list[str]:
    """The lines a service wrote to its log after byte ``offset``."""
    with process.log.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()


async def within(seconds: float, check: Callable[[], Any], what: str) -> float:
    """Wait until ``check`` holds, at most ``seconds``; returns how long it took."""
    started = time.monotonic()
    await eventually(check, timeout=seconds, what=what)
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def loaded(faulty: Faulty, prefix: str) -> AsyncIterator[Load]:
    load = Load(faulty, prefix).start()
    try:
        yield load
    finally:
        await load.stop()
