"""Correlation ids, request metrics, worker readings and readiness, on a small app.

Nothing here needs the real infrastructure: the readiness test points at closed ports
(tests/shared/test_observability_infra.py checks the real database and broker).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import httpx
from aiokafka import TopicPartition
from fastapi import FastAPI

from shared.adapters.readings import KafkaOffsets, Readings, lag_by_topic
from shared.kernel.logs import current_correlation_id
from shared.kernel.permissions import CLINICAL_FIRST, Rule, ServiceTable
from shared.kernel.settings import DatabaseSettings, ServiceSettings
from shared.web.auth import Role
from shared.web.http import Authorisation, Caller, authorised
from shared.web.observability import instrument
from tests.support import ISSUER, VERIFIER, free_port, principal


def unreachable_settings(service: str = "enrollment") -> ServiceSettings:
    """Settings whose database and broker are closed ports on this machine."""
    database = DatabaseSettings("127.0.0.1", free_port(), "u", "secret-pw", "db")
    return ServiceSettings(service, database, f"127.0.0.1:{free_port()}", "t", 1, 1, "127.0.0.1", 0)


def small_app(*workers: object) -> FastAPI:
    app = FastAPI()
    rule = Rule("enrollment.register", frozenset({Role.INVESTIGATOR}), "register")
    rows = ServiceTable("enrollment", (rule,), (), CLINICAL_FIRST)
    app.state.authorisation = Authorisation(VERIFIER, rows, lambda _: None)

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str | None]:
        return {"item": item_id, "correlation_id": current_correlation_id()}

    @app.post("/commands")
    def command(caller: Annotated[Caller, authorised("enrollment.register")]) -> str:
        return caller.correlation_id

    instrument(app, unreachable_settings(), *workers)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_request_without_correlation_id_gets_one_echoed_in_the_response() -> None:
    async with client(small_app()) as http:
        response = await http.get("/items/1")
    echoed = response.headers["x-correlation-id"]
    assert uuid.UUID(echoed)
    assert response.json()["correlation_id"] == echoed


async def test_the_client_correlation_id_is_kept_and_echoed() -> None:
    async with client(small_app()) as http:
        response = await http.get("/items/1", headers={"X-Correlation-Id": "visit-3.ae:17"})
    assert response.headers["x-correlation-id"] == "visit-3.ae:17"
    assert response.json()["correlation_id"] == "visit-3.ae:17"


async def test_a_malformed_correlation_id_is_replaced_not_logged() -> None:
    async with client(small_app()) as http:
        for bad in ("two words", "x" * 129):
            response = await http.get("/items/1", headers={"X-Correlation-Id": bad})
            assert uuid.UUID(response.headers["x-correlation-id"])


async def test_a_command_records_the_correlation_id_the_response_echoes() -> None:
    token, _ = ISSUER.access_token(principal(), datetime.now(UTC))
    async with client(small_app()) as http:
        response = await http.post("/commands", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == response.headers["x-correlation-id"]


async def test_requests_are_counted_by_route_template_and_status() -> None:
    async with client(small_app()) as http:
        await http.get("/items/S-101")
        await http.get("/items/S-102")
        await http.get("/no/such/page")
        text = (await http.get("/metrics")).text
    assert (
        'trialledger_http_requests_total{method="GET",route="/items/{item_id}",'
        'service="enrollment",status="200"} 2.0'
    ) in text
    assert 'route="unmatched",service="enrollment",status="404"} 1.0' in text
    assert (
        'trialledger_http_request_duration_seconds_count{method="GET",'
        'route="/items/{item_id}",service="enrollment"} 2.0'
    ) in text
    assert "S-101" not in text


async def test_two_apps_in_one_process_keep_their_own_counts() -> None:
    first, second = small_app(), small_app()
    async with client(first) as a, client(second) as b:
        await a.get("/items/1")
        await a.get("/items/1")
        await b.get("/items/1")
        first_text, second_text = (await a.get("/metrics")).text, (await b.get("/metrics")).text
    assert 'route="/items/{item_id}",service="enrollment",status="200"} 2.0' in first_text
    assert 'route="/items/{item_id}",service="enrollment",status="200"} 1.0' in second_text


class Reporting:
    """A worker that reports fixed readings."""

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        return Readings(
            relay_lag={"trialledger.enrollment.events": 4},
            consumer_lag={("cohort-view", "trialledger.adverse_events.events"): 2},
            dead_letters={"cohort-view": 1},
            consumed={("cohort-view", "applied"): 9},
        )


class Failing:
    async def readings(self, kafka: KafkaOffsets) -> Readings:
        raise ConnectionError("database down")


class NotAWorkerThatReports:
    async def run(self) -> None: ...


async def test_workers_readings_are_exposed_at_each_scrape() -> None:
    async with client(small_app(Reporting(), NotAWorkerThatReports())) as http:
        text = (await http.get("/metrics")).text
    for sample in (
        'trialledger_relay_lag_events{service="enrollment",'
        'topic="trialledger.enrollment.events"} 4.0',
        'trialledger_consumer_lag_messages{consumer="cohort-view",service="enrollment",'
        'topic="trialledger.adverse_events.events"} 2.0',
        'trialledger_dead_letters{consumer="cohort-view",service="enrollment"} 1.0',
        'trialledger_consumed_messages_total{consumer="cohort-view",outcome="applied",'
        'service="enrollment"} 9.0',
        'trialledger_readings_up{service="enrollment"} 1.0',
    ):
        assert sample in text


async def test_a_worker_that_cannot_report_is_flagged_and_the_others_still_report() -> None:
    async with client(small_app(Failing(), Reporting())) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert 'trialledger_readings_up{service="enrollment"} 0.0' in response.text
    assert 'trialledger_dead_letters{consumer="cohort-view",service="enrollment"} 1.0' in (
        response.text
    )


class Cosigning:
    """A witness's readings for two studies' ledgers: the first study's without a study."""

    async def readings(self, kafka: KafkaOffsets) -> Readings:
        return Readings(witness_failing={("w+01", ""): 0, ("w+01", "SYN-CART-2"): 1})


async def test_a_witness_reading_of_the_first_study_keeps_its_labels_and_another_names_it() -> None:
    async with client(small_app(Cosigning())) as http:
        text = (await http.get("/metrics")).text
    assert 'trialledger_witness_failing{service="enrollment",witness="w+01"} 0.0' in text
    assert ('trialledger_witness_failing{service="enrollment",study="SYN-CART-2",'
            'witness="w+01"} 1.0') in text  # fmt: skip


async def test_not_ready_when_neither_the_database_nor_kafka_answers() -> None:
    async with client(small_app()) as http:
        response = await http.get("/ready")
        health = await http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert set(body["checks"]) == {"database", "kafka"}
    assert body["checks"]["database"] != "ok"
    assert body["checks"]["kafka"] != "ok"
    assert "secret-pw" not in response.text
    assert health.status_code == 200  # liveness does not depend on the others


def test_lag_sums_partitions_and_counts_an_unread_partition_from_zero() -> None:
    ends = {
        TopicPartition("a", 0): 10,
        TopicPartition("a", 1): 5,
        TopicPartition("b", 0): 3,
    }
    positions = {TopicPartition("a", 0): 7, TopicPartition("b", 0): 3}
    assert lag_by_topic(ends, positions) == {"a": 3 + 5, "b": 0}
