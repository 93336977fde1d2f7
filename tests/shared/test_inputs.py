"""The input guard: only readable, storable input reaches a route; the rest is refused
with the coded body, before authorisation and before anything is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.kernel.envelope import Contract
from shared.web.http import install_error_mapping
from shared.web.inputs import MAX_BODY_BYTES, IsoDate, IsoDateTime, contract_of


class Note(Contract):
    text: str
    tags: dict[str, str] | None = None


def guarded_app(calls: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_mapping(app)

    @app.post("/notes/{note_id}")
    def write(note_id: str, body: Note, version: str | None = None) -> dict[str, str]:
        calls.append(note_id)
        return {"text": body.text}

    return app


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
async def client(calls: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=guarded_app(calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def json_body(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


async def test_a_readable_request_reaches_the_route(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    response = await client.post("/notes/n-1", json={"text": "dose 1 × 10⁶/kg\n"})
    assert response.status_code == 200, response.text
    assert calls == ["n-1"]


async def test_a_nul_in_the_query_string_is_refused_before_the_route(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    response = await client.post("/notes/n-1?version=a%00b", json={"text": "x"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert response.json()["details"]["errors"][0]["location"] == ["query", "version"]
    assert calls == []


async def test_a_nul_in_the_path_is_refused(client: httpx.AsyncClient, calls: list[str]) -> None:
    response = await client.post("/notes/n%001", json={"text": "x"})
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == ["path"]
    assert calls == []


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ('{"text": "a\\u0000b"}', ["body", "text"]),
        ('{"text": "x", "tags": {"site": "ZJU\\u0000"}}', ["body", "tags", "site"]),
        ('{"text": "x", "tags": {"a\\u0000": "y"}}', ["body", "tags", "?"]),
        ('{"text": "lone \\ud800 surrogate"}', ["body", "text"]),
        ('{"text": "lone \\udc00 low surrogate"}', ["body", "text"]),
        ('[{"deep": ["\\u0000"]}]', ["body", 0, "deep", 0]),
    ],
)
@pytest.mark.part11("11.10(h)")
async def test_text_postgresql_cannot_store_is_refused_wherever_it_is_in_the_body(
    client: httpx.AsyncClient, calls: list[str], body: str, location: list[Any]
) -> None:
    response = await client.post("/notes/n-1", **json_body(body))
    assert response.status_code == 422
    error = response.json()["details"]["errors"][0]
    assert (error["location"], error["type"]) == (location, "text_unstorable")
    assert calls == []


async def test_a_surrogate_pair_is_a_character_like_any_other(client: httpx.AsyncClient) -> None:
    response = await client.post("/notes/n-1", **json_body('{"text": "\\ud83d\\ude00"}'))
    assert response.status_code == 200
    assert response.json() == {"text": "😀"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "caf\xe9"}',  # Latin-1
        b'{"text": "\xed\xa0\x80"}',  # a surrogate encoded as if it were UTF-8
        b"\xff\xfe{\x00}\x00",  # UTF-16
    ],
)
async def test_a_body_that_is_not_utf8_is_a_coded_422(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/notes/n-1", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["type"] == "json_invalid"


NESTED = "[" * 30_000 + "]" * 30_000  # deeper than Python's recursion limit
TOO_LONG_A_NUMBER = "1" * 5000  # Python refuses ints of over 4300 digits


@pytest.mark.parametrize(
    "body", ['{"text": ', '{"text": NaN}', '{"text": Infinity}', NESTED, TOO_LONG_A_NUMBER]
)
async def test_a_body_that_is_not_json_is_a_coded_422(
    client: httpx.AsyncClient, calls: list[str], body: str
) -> None:
    response = await client.post("/notes/n-1", **json_body(body))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert calls == []


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                     "application/json; charset=latin-1"],
)  # fmt: skip
async def test_a_body_that_is_not_json_by_its_type_is_a_coded_415(
    client: httpx.AsyncClient, calls: list[str], content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client.post("/notes/n-1", content=b'{"text": "x"}', headers=headers)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert calls == []


def form_app(calls: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_mapping(app, forms=("/pages/",))

    @app.post("/{folder}/login")
    async def login(folder: str, request: Request) -> dict[str, str]:
        calls.append((await request.body()).decode())
        return {}

    return app


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/pages/login", b"user_id=aud.kim&password=p%C3%A4ss", 200),
        ("/notes/login", b"user_id=aud.kim", 415),  # not a path that takes forms
        ("/pages/login", b"user_id=aud%00kim", 415),  # a NUL PostgreSQL cannot store
        ("/pages/login", b"user_id=%FF", 415),  # not UTF-8
    ],
)
async def test_a_form_is_taken_only_where_forms_are_and_only_of_storable_text(
    path: str, body: bytes, status: int
) -> None:
    calls: list[str] = []
    transport = httpx.ASGITransport(app=form_app(calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        response = await client.post(path, content=body, headers=headers)
    assert response.status_code == status
    assert len(calls) == (status == 200)


async def test_json_types_and_the_utf8_charset_are_accepted(client: httpx.AsyncClient) -> None:
    for content_type in (
        "application/json; charset=UTF-8",
        'application/json;charset="utf-8"',
        "application/merge-patch+json",
    ):
        response = await client.post(
            "/notes/n-1", content=b'{"text": "x"}', headers={"content-type": content_type}
        )
        assert response.status_code == 200, content_type


async def test_a_body_over_the_limit_is_a_coded_413(
    client: httpx.AsyncClient, calls: list[str]
) -> None:
    text = "x" * MAX_BODY_BYTES
    response = await client.post("/notes/n-1", json={"text": text})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert response.json()["details"] == {"max_bytes": MAX_BODY_BYTES}
    assert calls == []


async def test_a_streamed_body_over_the_limit_is_a_coded_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"text": "'
        for _ in range(MAX_BODY_BYTES // 1000 + 1):
            yield b"x" * 1000
        yield b'"}'

    response = await client.post(
        "/notes/n-1", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# --- date-times: ISO 8601 text, never numbers -------------------------------------------


class Visit(Contract):
    at: IsoDateTime
    on: IsoDate | None = None


def dated_app() -> FastAPI:
    app = FastAPI()
    install_error_mapping(app)

    @app.get("/as-of")
    def as_of(at: IsoDateTime) -> dict[str, str]:
        return {"at": at.isoformat()}

    @app.post("/visits")
    def visit(body: Visit) -> dict[str, str | None]:
        return {"at": body.at.isoformat(), "on": None if body.on is None else body.on.isoformat()}

    return app


@pytest.fixture
async def dated() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=dated_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.mark.parametrize("text", ["2026-11-20T09:30:00Z", "2026-11-20T17:30:00+08:00"])
@pytest.mark.part11("UTC")
async def test_a_date_time_with_its_offset_is_read_in_utc(
    dated: httpx.AsyncClient, text: str
) -> None:
    response = await dated.get("/as-of", params={"at": text})
    assert response.json() == {"at": "2026-11-20T09:30:00+00:00"}
    response = await dated.post("/visits", json={"at": text})
    assert response.json()["at"] == "2026-11-20T09:30:00+00:00"


@pytest.mark.parametrize(
    "text",
    ["0.5", "0", "1700000000", "-1", "2026-11-20T09:30:00", "2026-11-20", "yesterday",
     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)  # fmt: skip
async def test_a_query_date_time_must_be_iso_8601_with_an_offset_and_in_range(
    dated: httpx.AsyncClient, text: str
) -> None:
    response = await dated.get("/as-of", params={"at": text})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize("value", [0.5, 1700000000, "1700000000", True])
async def test_a_body_date_time_is_never_a_number(dated: httpx.AsyncClient, value: Any) -> None:
    response = await dated.post("/visits", json={"at": value})
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == ["body", "at"]


@pytest.mark.parametrize("value", [0, 20261120, "20261120", "2026-11-20T00:00:00Z"])
async def test_a_date_is_iso_8601_text_only(dated: httpx.AsyncClient, value: Any) -> None:
    response = await dated.post("/visits", json={"at": "2026-11-20T09:30:00Z", "on": value})
    assert response.status_code == 422
    assert response.json()["details"]["errors"][0]["location"] == ["body", "on"]


def test_a_date_time_is_documented_as_iso_text() -> None:
    schema = dated_app().openapi()["paths"]["/as-of"]["get"]["parameters"][0]["schema"]
    assert schema == {"format": "date-time", "title": "At", "type": "string"}


@dataclass(frozen=True)
class Dose:
    mg: Decimal
    days: int = 1


class DoseIn(contract_of(Dose)): ...  # type: ignore[misc]


def test_an_input_made_of_a_domain_value_has_its_fields_types_and_defaults() -> None:
    assert DoseIn.model_validate({"mg": "2.5"}).model_dump() == {"mg": Decimal("2.5"), "days": 1}
    assert DoseIn.model_json_schema()["title"] == "DoseIn"
    with pytest.raises(ValueError, match="extra"):
        DoseIn.model_validate({"mg": "2.5", "route": "iv"})
    with pytest.raises(ValueError, match="mg"):
        DoseIn.model_validate({"days": 2})
