"""Test helpers: sample screenings, commands, and reading a real topic back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from services.enrollment.domain import Actor, Command, Consent, Provenance, Screening
from services.enrollment.rules import Observation

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
CONSENT_DAY = date(2026, 11, 2)
SCREENING_DAY = date(2026, 11, 5)
INVESTIGATOR = Actor("u-inv-1", "Dr Lin Wei", "investigator", "ZJU-1")


def command(now: datetime = NOW, actor: Actor = INVESTIGATOR) -> Command:
    return Command(Provenance(actor, correlation_id="corr-1", client_id="tests"), now)


def consent(signed_on: date = CONSENT_DAY) -> Consent:
    return Consent("ICF v2.1", signed_on, "Dr Lin Wei")


def eligible_observations(day: date = SCREENING_DAY) -> dict[str, Observation]:
    """A screening that meets every criterion, each value comfortably inside its limit."""

    def flag(present: bool) -> Observation:
        return Observation(present, day)

    return {
        "cd19_bcma_positive": flag(True),
        "refractory_disease": flag(True),
        "estimated_survival": Observation(Decimal(52), day, "weeks"),
        "pregnancy_test": Observation("negative", day),
        "contraception_agreed": flag(True),
        "platelets": Observation(Decimal(180), day, "10^9/L"),
        "lymphocytes_absolute": Observation(Decimal("1.6"), day, "10^9/L"),
        "cns_history": flag(False),
        "heart_disease_or_prolonged_qt": flag(False),
        "pregnant_or_lactating": flag(False),
        "severe_active_infection": flag(False),
        "active_hepatitis_b_or_c": flag(False),
        "hiv_infection": flag(False),
        "systemic_steroids": Observation(None, day),
        "creatinine": Observation(Decimal("0.8"), day, "mg/dL"),
        "alt": Observation(Decimal(30), day, "U/L", Decimal(40)),
        "ast": Observation(Decimal(28), day, "U/L", Decimal(40)),
        "bilirubin": Observation(Decimal("0.6"), day, "mg/dL"),
        "other_uncontrolled_disease": flag(False),
        "investigator_judged_risk": flag(False),
    }


def screening(**changes: Observation) -> Screening:
    return Screening(SCREENING_DAY, {**eligible_observations(), **changes})


def observation_json(observation: Observation) -> dict[str, Any]:
    """An observation as a client sends it over HTTP."""
    value: Any = observation.value
    if isinstance(value, Decimal):
        value = str(value)
    elif isinstance(value, date):
        value = value.isoformat()
    return {
        "value": value,
        "unit": observation.unit,
        "upper_limit_normal": None
        if observation.upper_limit_normal is None
        else str(observation.upper_limit_normal),
        "observed_on": observation.observed_on.isoformat(),
    }


def screening_json(observations: dict[str, Observation] | None = None) -> dict[str, Any]:
    observations = observations or eligible_observations()
    return {
        "screened_on": SCREENING_DAY.isoformat(),
        "observations": {code: observation_json(o) for code, o in observations.items()},
    }


HEADERS = {
    "X-Actor-Id": INVESTIGATOR.user_id,
    "X-Actor-Name": INVESTIGATOR.printed_name,
    "X-Actor-Role": INVESTIGATOR.role,
    "X-Actor-Site": INVESTIGATOR.site,
    "X-Correlation-Id": "corr-http-1",
    "X-Client-Id": "tests",
}


async def read_topic(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from its start with a plain consumer until ``expected`` records came.

    Fails (does not hang) after ``timeout`` seconds with what it has read.
    """
    # Without a group id the consumer takes every partition of the topic itself.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
        assert len(records) >= expected, f"read {len(records)} of {expected} from {topic}"
        return records
    finally:
        await consumer.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Wait until ``check`` holds, failing after ``timeout`` seconds (not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not hold within {timeout}s")
