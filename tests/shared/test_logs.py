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

from shared.kernel.logs import (
    Summarise,
    cloudevent_correlation,
    correlated,
    current_correlation_id,
    log_handler,
)
from shared.kernel.settings import SettingsError

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
        "import logging; from shared.web.runner import configure_logging; "
        "from shared.kernel.logs import correlated; configure_logging('infusion'); "
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


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def records(summarise: Summarise, *messages: tuple[str, int, str]) -> list[logging.LogRecord]:
    """The records ``summarise`` lets through, of (logger, level, template) made in order."""
    made = [logging.LogRecord(name, level, __file__, 1, msg, ("x",), None)
            for name, level, msg in messages]  # fmt: skip
    return [record for record in made if summarise.filter(record)]


def test_a_repeated_warning_is_written_once_per_window_then_says_how_many_were_left_out() -> None:
    clock = Clock()
    summarise = Summarise(window=60, clock=clock)
    retry = ("aiokafka", logging.ERROR, "Unable connect to node %s")
    assert len(records(summarise, *[retry] * 500)) == 1
    clock.now = 61
    (after,) = records(summarise, retry)
    assert getattr(after, "left_out", None) == 499


def test_each_distinct_problem_and_every_info_line_is_written() -> None:
    summarise = Summarise(window=60, clock=Clock())
    written = records(
        summarise,
        ("aiokafka", logging.ERROR, "Unable connect to node %s"),
        ("aiokafka", logging.WARNING, "Unable connect to node %s"),
        ("shared.adapters.relay", logging.ERROR, "Unable connect to node %s"),
        ("aiokafka", logging.ERROR, "Heartbeat failed %s"),
        *[("shared.adapters.relay", logging.INFO, "relay published %s")] * 3,
    )
    assert len(written) == 7
    assert not any(hasattr(record, "left_out") for record in written)
