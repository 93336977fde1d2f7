"""Parallel identical commands on one subject, through the HTTP API, on the real
PostgreSQL: one succeeds, the others are coded 409s, the store holds one event (marked
``on_postgres``: the conftests' ``client`` serves an ``application`` on PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from services.enrollment.application import EnrollmentApplication
from services.enrollment.domain import Subject
from shared.kernel.provenance import Meaning
from shared.kernel.records import SubjectRecord
from tests.support import bearer, parallel_conflicts, signature_json, stored_count

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]


async def register(client: httpx.AsyncClient) -> httpx.Response:
    body = {"subject_id": "S-001", "site_id": "ZJU-1"}
    return await client.post("/subjects", json=body, headers=bearer())


async def test_parallel_registrations_of_one_subject_register_it_once(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    conflicts = await parallel_conflicts(lambda: register(client), 201)

    assert conflicts == {"subject_already_registered"}
    assert stored_count(application, Subject.SubjectRegistered) == 1


async def test_parallel_consents_of_one_subject_record_one_signed_consent(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    await register(client)
    body = {
        "form_version": "ICF v2.1",
        "signed_on": "2026-11-02",
        "obtained_by": "Dr Lin Wei",
        "signature": signature_json(Meaning.RESPONSIBILITY, "enrollment/consent/S-001"),
    }

    conflicts = await parallel_conflicts(
        lambda: client.post("/subjects/S-001/consent", json=body, headers=bearer()), 200
    )

    assert conflicts == {"consent_already_recorded"}
    assert (
        stored_count(application, Subject.ConsentSigned)
        == stored_count(application, SubjectRecord.RecordSigned)
        == 1
    )
