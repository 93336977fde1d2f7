"""What the services accept over HTTP, decided once (docs/integrating.md, HTTP requests).

- ``InputGuard``, an ASGI middleware, refuses before any route or authorisation runs:
  a body over ``MAX_BODY_BYTES`` (413), a body that is not JSON (415), JSON that is not
  UTF-8 or does not parse (422), and text PostgreSQL cannot store (NUL, lone surrogates)
  in the path, the query string, or any string or key of the JSON body (422). Such text
  stored in an event would be published, and then refused by the ledger downstream.
- ``IsoDateTime`` and ``IsoDate``: ISO 8601 text only (a number is not a date), a
  date-time with its UTC offset, normalised to UTC.
- ``BIGINT_MAX``: the largest integer a PostgreSQL ``bigint`` holds, the bound of every
  integer that reaches a query.
- ``Line`` and ``Paragraph``: the two lengths of text a command takes (an id, a name, a
  unit; a reason, a verbatim term), so that a long value is refused naming its field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, get_type_hints
from urllib.parse import parse_qsl

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    StringConstraints,
    TypeAdapter,
    create_model,
)
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.kernel.envelope import Contract
from shared.kernel.storable import UNSTORABLE, unstorable_text

# Far above any command here (a screening is a few kB), and far below Kafka's default
# 1 MB message limit, so that no command can make an event too large to publish.
MAX_BODY_BYTES = 64 * 1024
BIGINT_MAX = 2**63 - 1

# Text PostgreSQL cannot store is refused at the door (UNSTORABLE, shared.kernel.storable).
_JSON_TYPES = re.compile(r"application/(?:[\w.+-]+\+)?json")

Refusal = tuple[int, str, str, dict[str, Any]]
"""An answer to bad input: status, code, message, details."""
ErrorAnswer = Callable[[int, str, str, dict[str, Any]], ASGIApp]
"""Builds the coded error response (``shared.web.http.error_response``)."""


class HttpMiddleware:
    """ASGI middleware that sees HTTP requests (``http``) and passes any other scope
    (lifespan, websocket) to the app untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class InputGuard(HttpMiddleware):
    """ASGI middleware: only readable, storable input reaches the app (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        answer: ErrorAnswer,
        max_body_bytes: int = MAX_BODY_BYTES,
        forms: tuple[str, ...] = (),
    ) -> None:
        """``forms``: path prefixes whose bodies may also be HTML forms
        (``application/x-www-form-urlencoded``, UTF-8, storable text): a browser's page."""
        super().__init__(app)
        self.answer = answer
        self.max_body_bytes = max_body_bytes
        self.forms = forms

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = _url_refusal(scope)
        body = b""
        if refusal is None:
            read = await self._read_body(scope, receive)
            if read is None:
                return  # the client went away
            body, refusal = read
        if refusal is None and not self._form(scope, body):
            refusal = _body_refusal(scope, body)
        if refusal is not None:
            await self.answer(*refusal)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _form(self, scope: Scope, body: bytes) -> bool:
        """Whether ``body`` is a readable HTML form posted to a path that takes forms."""
        path: str = scope.get("path", "")
        media_type = _header(scope, b"content-type").lower().split(";")[0].strip()
        if media_type != "application/x-www-form-urlencoded":
            return False
        if not any(path.startswith(prefix) for prefix in self.forms):
            return False
        try:
            fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            return False
        return unstorable_text(dict(fields)) is None

    async def _read_body(
        self, scope: Scope, receive: Receive
    ) -> tuple[bytes, Refusal | None] | None:
        """The whole body (commands are small), or a 413 as soon as it is too large."""
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return b"", self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    def _too_large(self) -> Refusal:
        return (
            413,
            "body_too_large",
            f"a request body may have at most {self.max_body_bytes} bytes",
            {"max_bytes": self.max_body_bytes},
        )


def _url_refusal(scope: Scope) -> Refusal | None:
    if UNSTORABLE.search(scope["path"]):
        return _invalid(["path"], "the path contains a NUL or a lone surrogate")
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if UNSTORABLE.search(name):
            return _invalid(["query"], "a query parameter's name contains a NUL")
        if UNSTORABLE.search(value):
            return _invalid(["query", name], "the query parameter contains a NUL")
    return None


def _body_refusal(scope: Scope, body: bytes) -> Refusal | None:
    """An empty body is the route's business; any other must be UTF-8 JSON of storable text."""
    if not body:
        return None
    media_type, *parameters = _header(scope, b"content-type").lower().split(";")
    charsets = {p.split("=", 1)[1].strip(' "') for p in parameters if "charset=" in p}
    if not _JSON_TYPES.fullmatch(media_type.strip()) or not charsets <= {"utf-8"}:
        return (
            415,
            "unsupported_media_type",
            "a request body must be JSON: Content-Type: application/json (UTF-8)",
            {"content_type": _header(scope, b"content-type")[:100]},
        )
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except UnicodeDecodeError:
        return _invalid(["body"], "the body is not UTF-8", "json_invalid")
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        return _invalid(["body"], f"the body is not JSON: {str(error)[:200]}", "json_invalid")
    location = unstorable_text(document)
    if location is not None:
        return _invalid(["body", *location], "text contains a NUL or a lone surrogate")
    return None


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity; JSON (RFC 8259) has no such numbers.
    raise ValueError(f"{constant} is not a JSON number")


def _invalid(location: list[str | int], message: str, kind: str = "text_unstorable") -> Refusal:
    """A 422 in the shape of the services' validation errors (``invalid_request``)."""
    error = {"location": location, "message": message, "type": kind}
    return (422, "invalid_request", message, {"errors": [error]})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _replay(body: bytes, receive: Receive) -> Receive:
    """The app reads the body already read; later messages (a disconnect) come from the
    client as usual."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# --- text lengths ------------------------------------------------------------------------

Line = Annotated[str, StringConstraints(max_length=200)]
"""Text of one line: an id, a name, a code, a unit."""
Paragraph = Annotated[str, StringConstraints(max_length=2000)]
"""Free text: a reason, a verbatim term, a description; a password, a signing assertion."""


# --- date-times --------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date_time_text(value: object) -> object:
    # pydantic alone reads 0.5 or "1700000000" as seconds since 1970
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_TIME.match(value)):
        return value
    raise PydanticCustomError(
        "iso_date_time",
        "an ISO 8601 date-time with its UTC offset is needed, such as 2026-11-20T09:30:00Z",
    )


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is a year 0 in UTC
        raise PydanticCustomError("datetime_range", "the date-time is out of range") from None


def _iso_date_text(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("iso_date", "an ISO 8601 date is needed, such as 2026-11-20")


IsoDateTime = Annotated[
    AwareDatetime, BeforeValidator(_iso_date_time_text), AfterValidator(_in_utc)
]
"""A date-time as ISO 8601 text with its offset (``2026-11-20T09:30:00Z``), in UTC."""

IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
"""A calendar date as ISO 8601 text (``2026-11-20``)."""

_ISO_DATE_ADAPTER: TypeAdapter[date] = TypeAdapter(IsoDate)


def iso_date(value: object) -> date:
    """``value`` read as an ``IsoDate``; a ``ValueError`` (pydantic's) if it is not one."""
    return _ISO_DATE_ADAPTER.validate_python(value)


# --- inputs that are a domain value's fields ---------------------------------------------


def contract_of(value: type[Any]) -> type[Contract]:
    """A ``Contract`` with the fields of the dataclass ``value`` (their types and defaults),
    so that an input the domain reads as that value is declared once; subclass it to name
    the input (its schema is named after the subclass)."""
    hints = get_type_hints(value)
    fields: dict[str, Any] = {
        field.name: (
            hints[field.name],
            ... if field.default is dataclasses.MISSING else field.default,
        )
        for field in dataclasses.fields(value)
    }
    return create_model(value.__name__, __base__=Contract, **fields)
