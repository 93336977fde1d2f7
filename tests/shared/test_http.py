"""The error registry: most specific registered class wins, every body has a code."""

from __future__ import annotations

from typing import Any

import httpx
from eventsourcing.persistence import IntegrityError, OperationalError
from fastapi import FastAPI

from shared.http import install_error_mapping


class Refusal(Exception):
    code = "refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message, self.details = message, details


class Conflict(Refusal):
    code = "conflict"


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_mapping(app, {Refusal: 400, Conflict: 409})

    @app.get("/")
    def fail() -> None:
        raise error

    return app


async def get(app: FastAPI) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/")


async def test_most_specific_registered_class_decides_the_status() -> None:
    response = await get(app_raising(Conflict("taken", subject_id="S-1")))
    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "message": "taken",
        "details": {"subject_id": "S-1"},
    }


async def test_unreachable_event_store_is_503_service_unavailable() -> None:
    response = await get(app_raising(OperationalError("connection refused")))
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


async def test_a_stale_save_that_reaches_the_edge_is_a_coded_409_without_database_text() -> None:
    stale = IntegrityError('duplicate key value violates unique constraint "identity_events_pkey"')
    response = await get(app_raising(stale))
    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["details"]) == ("conflict", {})
    assert "nothing was recorded" in body["message"]
    assert "identity_events" not in body["message"]
