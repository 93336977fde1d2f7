"""End to end: real identity and enrollment processes, over real HTTP, into PostgreSQL
and out onto the real Kafka topic, read back with a plain aiokafka consumer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.kernel.envelope import CloudEvent
from shared.kernel.signatures import verify_published
from tests.e2e.flows import stored_events
from tests.e2e.stack import Stack
from tests.support import read_topic, screening_json

pytestmark = pytest.mark.integration
PASSWORD = "investigator passphrase"


async def test_commands_travel_from_http_through_postgres_onto_kafka(stack: Stack) -> None:
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    session = {**session, "X-Correlation-Id": "corr-e2e-1"}
    before = datetime.now(UTC)
    occurred = (before - timedelta(hours=2)).replace(microsecond=0)
    consent_signature = await stack.signature(
        session, "responsibility", "enrollment/consent/S-201", PASSWORD, "lin.wei"
    )
    register = {"subject_id": "S-201", "site_id": "ZJU-1", "occurred_at": occurred.isoformat()}
    steps = [
        ("/subjects", register),
        ("/subjects/S-201/consent", {
            "form_version": "ICF v2.1", "signed_on": "2026-11-02", "obtained_by": "Lin Wei",
            "signature": consent_signature,
        }),
        ("/subjects/S-201/screening", screening_json()),
    ]  # fmt: skip
    for path, body in steps:
        response = await stack.enrollment.post(path, json=body, headers=session)
        assert response.status_code in (200, 201), response.text
    # a later signing in the same session needs the password only
    decision = {
        "signature": await stack.signature(
            session, "approval", "enrollment/eligibility/S-201", PASSWORD
        )
    }
    response = await stack.enrollment.post(
        "/subjects/S-201/eligibility", json=decision, headers=session
    )
    assert response.json()["eligibility"]["eligible"] is True
    enrolled = await stack.enrollment.post(
        "/subjects/S-201/enrollment", json={"dose_level": 1}, headers=session
    )
    assert enrolled.status_code == 200, enrolled.text
    refused = await stack.enrollment.post(
        "/subjects/S-201/enrollment", json={"dose_level": 1}, headers=session
    )
    assert refused.json()["code"] == "already_enrolled"

    settings = stack.enrollment_settings
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=7)
    assert len(records) == 7  # the refused command published nothing
    events = [CloudEvent.from_kafka_value(r.value) for r in records]
    assert [e.type for e in events] == [
        "SubjectRegistered.v1",
        "ConsentSigned.v1",
        "RecordSigned.v2",
        "ScreeningResultRecorded.v1",
        "EligibilityConfirmed.v1",
        "RecordSigned.v2",
        "SubjectEnrolled.v1",
    ]
    assert {r.key for r in records} == {b"S-201"}
    assert {r.partition for r in records} == {records[0].partition}
    assert {dict(r.headers)["content-type"] for r in records} == {
        b"application/cloudevents+json; charset=utf-8"
    }

    registered = events[0]
    assert registered.source == "/trial-ledger/enrollment"
    assert registered.subject == "S-201"
    assert registered.time == occurred
    assert before <= registered.recordedtime <= datetime.now(UTC)
    assert registered.correlationid == "corr-e2e-1"
    assert registered.data["actor"] == {
        "user_id": "lin.wei",
        "printed_name": "Lin Wei",
        "role": "investigator",
        "site": "ZJU-1",
    }
    assert registered.data["site_id"] == "ZJU-1"
    assert [e.data["version"] for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert len({e.data["record_id"] for e in events}) == 1

    consented = events[1].data
    assert (consented["form_version"], consented["signed_on"], consented["obtained_by"]) == (
        "ICF v2.1", "2026-11-02", "Lin Wei"
    )  # fmt: skip
    signature = events[2].data
    assert (signature["signer_id"], signature["printed_name"], signature["meaning"]) == (
        "lin.wei", "Lin Wei", "responsibility"
    )  # fmt: skip
    key = stack.record_public_key()
    wire = [json.loads(r.value) for r in records]  # as a verifier in any language reads them
    assert verify_published(wire[1], wire[2], key)
    assert verify_published(wire[4], wire[5], key)
    assert not verify_published(wire[4], wire[2], key)  # moved: fails
    assert events[4].data["rule_version"] == "NCT05030779/def-1/eligibility/2"
    assert events[6].data["dose_level"] == 1
    assert await stored_events(settings, "enrollment_events") == 7


async def test_openapi_documents_answer(stack: Stack) -> None:
    document = (await stack.enrollment.get("/openapi.json")).json()
    assert document["info"]["title"] == "Trial Ledger: enrollment"
    assert (await stack.enrollment.get("/docs")).status_code == 200
    assert (await stack.identity.get("/openapi.json")).json()["info"]["title"] == (
        "Trial Ledger: identity"
    )
