"""JSON log lines: one object per line, with the service and the correlation id."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.logs import cloudevent_correlation, correlated, current_correlation_id, log_handler
from shared.settings import SettingsError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own, writing JSON lines to a buffer."""
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.logs.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = log_handler("enrollment", "json", stream)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_carries_the_service_and_the_correlation_id(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    with correlated("corr-42"):
        logger.info("relay published count=%d", 3, extra={"topic": "t1"})
    [line] = lines(stream)
    assert line["level"] == "INFO"
    assert line["logger"] == logger.name
    assert line["message"] == "relay published count=3"
    assert line["service"] == "enrollment"
    assert line["correlation_id"] == "corr-42"
    assert line["topic"] == "t1"
    assert line["ts"].endswith("+00:00")


def test_a_line_outside_any_request_has_no_correlation_id(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    logger.warning("started")
    [line] = lines(stream)
    assert "correlation_id" not in line
    assert current_correlation_id() is None


def test_an_exception_is_kept_in_the_same_line(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed")
    [line] = lines(stream)
    assert "ValueError: bad value" in line["exception"]


def test_text_lines_end_with_the_correlation_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger(f"tests.logs.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(log_handler("identity", "text", stream))
    with correlated("corr-7"):
        logger.warning("login refused user=%s", "u-1")
    assert stream.getvalue().rstrip().endswith("login refused user=u-1 correlation_id=corr-7")


def test_an_unknown_log_format_is_refused_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="TL_LOG_FORMAT"):
        log_handler("identity", "xml")


def test_the_correlation_id_of_a_cloudevent_and_of_unreadable_records() -> None:
    assert cloudevent_correlation(b'{"correlationid": "corr-9", "id": "x"}') == "corr-9"
    assert cloudevent_correlation(b"not json") is None
    assert cloudevent_correlation(b"[1, 2]") is None
    assert cloudevent_correlation(None) is None


def test_a_service_process_logs_json_lines_on_stderr() -> None:
    program = (
        "import logging; from shared.runner import configure_logging; "
        "from shared.logs import correlated; configure_logging('infusion'); "
        "c = correlated('corr-p'); c.__enter__(); logging.getLogger('x').info('hello')"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        env={"TL_LOG_LEVEL": "INFO"},
        cwd=ROOT,
    )
    [line] = [json.loads(raw) for raw in done.stderr.splitlines()]
    assert (line["service"], line["correlation_id"], line["message"]) == (
        "infusion",
        "corr-p",
        "hello",
    )
