"""Running a service process: logging, and the HTTP server beside the relay."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from shared.kernel import logs
from shared.kernel.settings import ServiceSettings
from shared.web import processes
from shared.web.observability import instrument

log = logging.getLogger(__name__)


def configure_logging(service: str | None = None) -> None:
    """JSON lines on stderr naming ``service`` (``TL_LOG_FORMAT=text`` for key=value);
    level from ``TL_LOG_LEVEL`` (default INFO). See ``shared.kernel.logs``."""
    logs.configure_logging(service)


class Worker(Protocol):
    """A background loop that runs until its ``stopping`` event is set."""

    async def run(self, stopping: asyncio.Event) -> None: ...


def _shared_port(settings: ServiceSettings) -> list[socket.socket] | None:
    """The port bound with ``SO_REUSEPORT`` when several processes serve it
    (``shared.web.processes``); None: one process, uvicorn binds it itself."""
    if settings.http_processes == 1:
        return None
    family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
    # made as TCP by name, as uvicorn's own bind makes it: asyncio sets TCP_NODELAY on
    # the accepted sockets only then (without it an answer waits for a delayed ACK)
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listening.bind((settings.http_host, settings.http_port))
    listening.listen(2048)
    # uvicorn says where it runs only when it binds the port itself
    log.info("running on http://%s:%d (one of %d processes on the port)", settings.http_host,
             settings.http_port, settings.http_processes)  # fmt: skip
    return [listening]


async def serve(settings: ServiceSettings, http: FastAPI, *workers: Worker) -> None:
    """Serve HTTP until a signal stops uvicorn, then stop the workers (relay, ingest).

    The app gets correlation ids, ``/ready`` and ``/metrics`` (``shared.web.observability``);
    workers that report readings (relay, subscriptions, ingest) appear in the metrics.
    """
    logs.name_service(settings.service)
    instrument(http, settings, *workers)
    server = uvicorn.Server(
        uvicorn.Config(http, host=settings.http_host, port=settings.http_port, log_config=None)
    )
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stopping)) for worker in workers]
    log.info(
        "service started service=%s http=http://%s:%d docs=/docs ready=/ready "
        "metrics=/metrics topic=%s",
        settings.service,
        settings.http_host,
        settings.http_port,
        settings.topic,
    )
    if settings.http_processes > 1:  # the others start once this one serves
        tasks.append(asyncio.create_task(_announce(server, stopping)))
    settle_heap()
    try:
        await server.serve(sockets=_shared_port(settings))
    finally:
        stopping.set()
        await asyncio.gather(*tasks)


def settle_heap() -> None:
    """Leave the start-up heap out of the garbage collector's reach. The modules, the app
    and its models live as long as the process; each full collection walked them all,
    stopping the process (its requests, relay, ingest) for 20-140 ms (measured on
    2026-12-04 under bench.e2e), which a command waiting behind it sees as latency.
    Frozen, they are never walked again; what the process makes later is collected as
    before. Garbage of the start is collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()


async def _announce(server: uvicorn.Server, stopping: asyncio.Event) -> None:
    """Tell ``shared.web.processes`` that this process serves (the others may start)."""
    while not (server.started or stopping.is_set()):  # noqa: ASYNC110 (uvicorn has a flag, no event)
        await asyncio.sleep(0.05)
    if server.started:
        processes.SERVING.set()
