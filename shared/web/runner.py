"""Running a service process: logging, and the HTTP server beside the relay."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from shared.kernel import logs
from shared.kernel.settings import ServiceSettings
from shared.web.observability import instrument

log = logging.getLogger(__name__)


def configure_logging(service: str | None = None) -> None:
    """JSON lines on stderr naming ``service`` (``TL_LOG_FORMAT=text`` for key=value);
    level from ``TL_LOG_LEVEL`` (default INFO). See ``shared.kernel.logs``."""
    logs.configure_logging(service)


class Worker(Protocol):
    """A background loop that runs until its ``stopping`` event is set."""

    async def run(self, stopping: asyncio.Event) -> None: ...


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
    try:
        await server.serve()
    finally:
        stopping.set()
        await asyncio.gather(*tasks)
