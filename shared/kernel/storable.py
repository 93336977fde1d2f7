"""Text PostgreSQL cannot store (a NUL, a lone surrogate): the input guard refuses it in a
request (``shared.web.inputs``), consumers dead-letter a record that carries it."""

from __future__ import annotations

import json
import re
from typing import Any

# PostgreSQL text cannot hold NUL, jsonb refuses \u0000, and a lone surrogate is not
# UTF-8 at all: such text fails the first INSERT that meets it, which can be downstream.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# A JSON escape of a NUL or of a surrogate: how such text arrives in a Kafka record.
_ESCAPED_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def unstorable_record(value: bytes) -> str | None:
    """Why a JSON record's text cannot be stored in PostgreSQL, if it cannot (a consumer
    dead-letters it instead of failing on it forever). Cheap unless an escape is there."""
    if not _ESCAPED_UNSTORABLE.search(value):
        return None
    where = unstorable_text(json.loads(value))
    if where is None:
        return None
    return f"text PostgreSQL cannot store (a NUL or a lone surrogate) at {where}"


def unstorable_text(document: Any) -> list[str | int] | None:
    """Where the first string or key PostgreSQL cannot store is, if any (iteratively:
    nesting is bounded only by the body size)."""
    pending: list[tuple[Any, list[str | int]]] = [(document, [])]
    while pending:
        value, location = pending.pop()
        if isinstance(value, str) and UNSTORABLE.search(value):
            return location
        if isinstance(value, dict):
            for key, item in value.items():
                if UNSTORABLE.search(key):
                    return [*location, "?"]  # never echo the key: a surrogate cannot be sent
                pending.append((item, [*location, key]))
        elif isinstance(value, list):
            pending.extend((item, [*location, index]) for index, item in enumerate(value))
    return None
