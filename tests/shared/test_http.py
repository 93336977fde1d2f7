"""The error registry: most specific registered class wins, every body has a code."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from eventsourcing.persistence import OperationalError
from fastapi import FastAPI

from shared.http import Authorisation, Caller, authorised, command_app, install_error_mapping
from shared.provenance import Role
from tests.support import VERIFIER


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


def test_each_operation_names_the_roles_its_command_permits() -> None:
    permissions = {"trial.read": frozenset({Role.MONITOR, Role.AUDITOR})}
    app = command_app("t", "t", {}, Authorisation(VERIFIER, permissions, lambda denial: None))

    @app.get("/things")
    def things(caller: Annotated[Caller, authorised("trial.read")]) -> None:
        return None

    paths = app.openapi()["paths"]
    assert paths["/things"]["get"]["x-permitted-roles"] == ["auditor", "monitor"]
    assert "x-permitted-roles" not in paths["/health"]["get"]  # public
