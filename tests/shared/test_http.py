"""The error registry: most specific registered class wins, every body has a code."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from eventsourcing.persistence import IntegrityError, OperationalError
from fastapi import FastAPI

from shared.kernel.errors import OutOfSequence
from shared.kernel.permissions import CLINICAL_FIRST, Rule, ServiceTable
from shared.kernel.provenance import Role
from shared.web.http import Authorisation, Caller, authorised, command_app, install_error_mapping
from tests.support import VERIFIER


class Conflict(OutOfSequence):
    code = "conflict"


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_mapping(app)

    @app.get("/")
    def fail() -> None:
        raise error

    return app


async def get(app: FastAPI) -> httpx.Response:
    return await call(app, "GET", "/")


async def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    # an app's own 500 answer is what is tested, not the exception it re-raises
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_most_specific_registered_class_decides_the_status() -> None:
    response = await get(app_raising(Conflict("taken", subject_id="S-1")))
    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "message": "taken",
        "details": {"subject_id": "S-1"},
    }


async def test_an_unknown_path_is_a_coded_404() -> None:
    response = await call(app_raising(Conflict("unused")), "GET", "/nowhere")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not Found", "details": {}}


async def test_a_method_the_path_does_not_take_is_a_coded_405() -> None:
    response = await call(app_raising(Conflict("unused")), "DELETE", "/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


async def test_an_unexpected_error_is_a_coded_500_without_its_traceback() -> None:
    response = await get(app_raising(KeyError("secret internals")))
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text


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


def test_each_operation_names_the_roles_its_command_permits() -> None:
    rule = Rule("trial.read", frozenset({Role.MONITOR, Role.AUDITOR}), "read the trial")
    rows = ServiceTable("t", (rule,), (), CLINICAL_FIRST)
    app = command_app("t", "t", (), Authorisation(VERIFIER, rows, lambda denial: None))

    @app.get("/things")
    def things(caller: Annotated[Caller, authorised("trial.read")]) -> None:
        return None

    paths = app.openapi()["paths"]
    assert paths["/things"]["get"]["x-permitted-roles"] == ["auditor", "monitor"]
    assert "x-permitted-roles" not in paths["/health"]["get"]  # public
