"""The base of every service's refusals (no I/O, so domain modules may raise them).

A refusal has a stable ``code`` that clients rely on, a message for people, and
machine-readable ``details``; ``shared.web.http`` maps each class to its HTTP status.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Refusal(Exception):
    code: ClassVar[str] = "refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
