"""The check the fuzz tests add to schemathesis's own; its ``hooks`` module (the CLI
imports it by name, so that the check can be listed in ``--checks``)."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response


@schemathesis.check
def coded_error_body(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx is the documented ``{"code", "message", "details"}`` body."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"a {response.status_code} whose body is not an object"
    assert isinstance(body.get("code"), str), f"a {response.status_code} without a code: {body}"
    assert isinstance(body.get("message"), str), f"a {response.status_code} without a message"
    return True
