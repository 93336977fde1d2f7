"""Running a service process: logging, and the HTTP server beside the relay."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


def configure_logging() -> None:
    """Key-value logs on stderr; level from ``TL_LOG_LEVEL`` (default INFO)."""
    logging.basicConfig(
        level=os.environ.get("TL_LOG_LEVEL", "INFO"),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )


class Worker(Protocol):
    """A background loop that runs until its ``stopping`` event is set."""

    async def run(self, stopping: asyncio.Event) -> None: ...


async def serve(settings: ServiceSettings, http: FastAPI, *workers: Worker) -> None:
    """Serve HTTP until a signal stops uvicorn, then stop the workers (relay, ingest)."""
    server = uvicorn.Server(
        uvicorn.Config(http, host=settings.http_host, port=settings.http_port, log_config=None)
    )
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stopping)) for worker in workers]
    log.info(
        "service started service=%s http=http://%s:%d docs=/docs topic=%s",
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
