"""Structured logs: one JSON object per line on stderr, carrying the correlation id.

The correlation id of the work in hand (an HTTP request, a consumed event) is kept in a
context variable, so that every line logged while handling it carries the id without
each call passing it along.

Settings: ``TL_LOG_LEVEL`` (default INFO), ``TL_LOG_FORMAT`` = ``json`` (default) or
``text`` (key=value lines, for a person reading a terminal).

Repeated warnings and errors are summarised (``Summarise``): an outage writes a few
lines, each distinct problem at least once, with how many repeats were left out.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from shared.kernel.settings import SettingsError

_CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_SERVICE: list[str] = []  # the process's service, once ``name_service`` was called

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# uvicorn's color_message repeats the message with terminal colour codes.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def current_correlation_id() -> str | None:
    """The correlation id of the request or event being handled, if any."""
    return _CORRELATION_ID.get()


@contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    """Log (and record) everything inside the block under ``correlation_id``."""
    token = _CORRELATION_ID.set(correlation_id)
    try:
        yield
    finally:
        _CORRELATION_ID.reset(token)


def name_service(service: str) -> None:
    """Name the service in log lines whose handler was configured without one."""
    _SERVICE[:] = [service]


def cloudevent_correlation(value: bytes | None) -> str | None:
    """The ``correlationid`` of a structured CloudEvent, or None if it has none.

    Never raises: a record unreadable here is dealt with (dead-lettered) by its consumer.
    """
    try:
        found = json.loads(value or b"").get("correlationid")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


class _Stamp(logging.Filter):
    """Stamps each record with the service and the current correlation id."""

    def __init__(self, service: str | None) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service or (_SERVICE[0] if _SERVICE else None)
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = _CORRELATION_ID.get()
        return True


class Summarise(logging.Filter):
    """A warning or error that repeats (same logger, level and message template) within
    ``window`` seconds is written once; the next one after the window carries
    ``left_out``, how many were not written. A broker outage, during which every client
    retries many times a second, then writes a few lines, not thousands; the first
    occurrence of every distinct problem is always written."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [since, left out]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                return False
            if len(self._seen) > 10_000:  # many distinct messages: forget the old ones
                self._seen.clear()
            self._seen[key] = [now, 0]
        if seen is not None and seen[1]:
            record.left_out = int(seen[1])
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "service", "correlation_id", ...extras}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(vars(record)))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _extras(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The record's non-standard attributes (service, correlation id, ``extra=``)."""
    return {k: v for k, v in attributes.items() if k not in _STANDARD and v not in (None, "")}


class TextFormatter(logging.Formatter):
    """Key=value lines, with the correlation id appended when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for name in ("correlation_id", "left_out"):
            value = getattr(record, name, None)
            line = f"{line} {name}={value}" if value else line
        return line


_FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


def log_handler(
    service: str | None, kind: str = "json", stream: IO[str] | None = None
) -> logging.Handler:
    """A handler writing ``kind`` lines (json or text) to ``stream`` (default stderr)."""
    if kind not in _FORMATTERS:
        raise SettingsError(f"setting TL_LOG_FORMAT must be json or text, got {kind!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_FORMATTERS[kind]())
    handler.addFilter(_Stamp(service))
    handler.addFilter(Summarise())
    return handler


def configure_logging(service: str | None = None, env: Mapping[str, str] | None = None) -> None:
    """Send every log record to stderr, one line each, in the configured format."""
    env = os.environ if env is None else env
    kind = env.get("TL_LOG_FORMAT", "json").strip().lower() or "json"
    handler = log_handler(service, kind)
    logging.basicConfig(level=env.get("TL_LOG_LEVEL", "INFO"), handlers=[handler], force=True)
    adopt_library_loggers()


def adopt_library_loggers(prefix: str = "faststream") -> None:
    """Send the records of loggers that a library gave handlers of its own (faststream
    prints coloured text to stdout) through the root logger's handler instead.

    faststream creates its broker's logger when the broker connects: call this again
    after ``broker.connect()`` and before ``broker.start()`` (``Subscriptions`` does).
    """
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".")[0] == prefix:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
