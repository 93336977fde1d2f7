"""Several processes of one service on one port (``shared.web.processes``): the first
starts the others once it serves, the kernel spreads connections between them, they stop
together, and one that ends stops the service with exit status 1 (never a service
running short of a process unnoticed)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import asyncio, os, sys
from fastapi import FastAPI
from shared.kernel.settings import ServiceSettings
from shared.web.processes import other_processes
from shared.web.runner import serve

app = FastAPI()

@app.get("/pid")
async def pid() -> dict[str, int]:
    return {"pid": os.getpid()}

with other_processes("demo", allowed=sys.argv[1:] != ["one"]):
    asyncio.run(serve(ServiceSettings.from_env("demo"), app))
"""


class Service:
    def __init__(self, folder: Path, *options: str) -> None:
        program = folder / "service.py"
        program.write_text(PROGRAM)
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TL_DEMO_HTTP_PORT": str(self.port),
               "TL_DEMO_HTTP_PROCESSES": "2", "TL_KAFKA_BOOTSTRAP": "127.0.0.1:9",
               "TL_DEMO_DATABASE_URL": "postgresql://nobody:none@127.0.0.1:9/none"}  # fmt: skip
        self.log = (folder / "service.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our interpreter, our program)
            [sys.executable, str(program), *options], env=env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    async def pids(self, until: int) -> set[int]:
        """The processes that answered, each request on a new connection, until ``until``
        of them have."""
        seen: set[int] = set()

        async def answered() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    got = await client.get(f"http://127.0.0.1:{self.port}/pid")
                seen.add(got.json()["pid"])
            except httpx.TransportError:
                pass  # not serving yet
            return len(seen) >= until

        await eventually(answered, timeout=60, what=f"{until} processes answering")
        return seen

    def ended(self, timeout: float = 30) -> int:
        return self.process.wait(timeout)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()
    running.log.close()


async def test_two_processes_serve_one_port_and_stop_together(service: Service) -> None:
    pids = await service.pids(until=2)
    assert service.process.pid in pids
    (other,) = pids - {service.process.pid}
    service.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(service.ended) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(other, 0)  # stopped with the first (and reaped by it)


async def test_a_process_that_ends_stops_the_service_with_exit_1(service: Service) -> None:
    (other,) = await service.pids(until=2) - {service.process.pid}
    os.kill(other, signal.SIGKILL)
    assert await asyncio.to_thread(service.ended) == 1


def test_a_one_process_service_refuses_more(tmp_path: Path) -> None:
    refusing = Service(tmp_path, "one")
    assert refusing.ended() != 0
    refusing.log.close()
    assert (
        "runs as one process: TL_DEMO_HTTP_PROCESSES must be 1, got 2"
        in (tmp_path / "service.log").read_text()
    )
