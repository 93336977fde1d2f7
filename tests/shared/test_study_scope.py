"""Every record names its study: the token's study goes into the event's provenance, the
relay publishes it as the CloudEvent extension ``studyid`` with the study in the Kafka key,
and a route is refused to a token of another study (docs/studies.md, Several studies)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.domain import Subject
from services.enrollment.publication import PUBLICATION
from shared.kernel.access import AccessDenial
from shared.kernel.envelope import CloudEvent
from shared.kernel.principals import Principal
from shared.kernel.provenance import Role
from shared.study import (
    DEFAULT_STUDY_ID,
    StudyDefinitionError,
    record_key,
    served_studies,
    study_definition,
)
from shared.web.service_app import Serving
from tests.support import ISSUER, NOW, VERIFIER, asgi_client, memory_outbox

SECOND = "SYN-CART-2"
ROOT = Path(__file__).resolve().parents[2]
PUBLISHED: dict[str, Any] = json.loads(
    (ROOT / "docs/examples/record-signature-v2.json").read_text("utf-8")
)["signed_event"]


def coordinator(study_id: str | None) -> dict[str, str]:
    who = Principal(
        "u-coord-1", "Chen Yu", "ZJU-1", frozenset({Role.STUDY_COORDINATOR}), "s-1",
        study_id=study_id,
    )  # fmt: skip
    token, _ = ISSUER.access_token(who, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}", "X-Client-Id": "tests"}


def registration(subject_id: str) -> dict[str, str]:
    return {"subject_id": subject_id, "site_id": "ZJU-1", "occurred_at": NOW.isoformat()}


@pytest.fixture
def application() -> EnrollmentApplication:
    return EnrollmentApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
async def client(application: EnrollmentApplication) -> AsyncIterator[httpx.AsyncClient]:
    serving = Serving(
        VERIFIER, memory_outbox(application, PUBLICATION), lambda: NOW,
        studies=(DEFAULT_STUDY_ID, SECOND),
    )  # fmt: skip
    async with asgi_client(create_app(application, serving), "enrollment") as client:
        yield client


def stored(application: EnrollmentApplication, cls: type) -> list[Any]:
    return [event for _, event in application.stored_events() if isinstance(event, cls)]


# --- the envelope ----------------------------------------------------------------------


def test_a_record_without_a_study_keeps_its_bytes_and_its_subject_key() -> None:
    event = CloudEvent.model_validate(PUBLISHED)
    assert event.studyid is None
    assert b"studyid" not in event.to_kafka_value()
    assert event.kafka_key(DEFAULT_STUDY_ID) == PUBLISHED["subject"].encode()


def test_a_record_of_a_study_names_it_and_renders_its_own_bytes_again() -> None:
    event = CloudEvent.model_validate({**PUBLISHED, "studyid": SECOND})
    value = event.to_kafka_value()
    assert json.loads(value)["studyid"] == SECOND
    assert CloudEvent.from_kafka_value(value).to_kafka_value() == value
    assert event.kafka_key(DEFAULT_STUDY_ID) == f"{SECOND}/{PUBLISHED['subject']}".encode()
    first = CloudEvent.model_validate({**PUBLISHED, "studyid": DEFAULT_STUDY_ID})
    assert first.kafka_key(DEFAULT_STUDY_ID) == PUBLISHED["subject"].encode()


def test_a_study_id_that_is_not_a_plain_name_is_refused() -> None:
    with pytest.raises(ValueError, match="studyid"):
        CloudEvent.model_validate({**PUBLISHED, "studyid": "../etc"})
    with pytest.raises(StudyDefinitionError):
        served_studies({"TL_STUDIES": "../etc"})
    with pytest.raises(StudyDefinitionError, match="no definition"):
        served_studies({"TL_STUDIES": f"{DEFAULT_STUDY_ID},NCT00000000"})


def test_the_first_study_is_served_unless_told_otherwise() -> None:
    assert served_studies({}) == (DEFAULT_STUDY_ID,)
    assert served_studies({"TL_STUDIES": f" {SECOND}, {DEFAULT_STUDY_ID},{SECOND}"}) == (
        SECOND,
        DEFAULT_STUDY_ID,
    )


def test_an_operator_adds_a_study_in_a_folder_of_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study need not be packaged: TL_STUDIES_DIR holds further definitions, checked as
    the packaged ones are; a packaged study is never taken from there."""
    text = (ROOT / "studies" / SECOND / "definition.json").read_text("utf-8")
    (tmp_path / "SYN-LOCAL-1").mkdir()
    (tmp_path / "SYN-LOCAL-1" / "definition.json").write_text(
        text.replace(f'"{SECOND}"', '"SYN-LOCAL-1"'), "utf-8"
    )
    (tmp_path / "SYN-LOCAL-2").mkdir()
    (tmp_path / "SYN-LOCAL-2" / "definition.json").write_text(text, "utf-8")  # wrong id
    monkeypatch.setenv("TL_STUDIES_DIR", str(tmp_path))
    assert served_studies({"TL_STUDIES": "SYN-LOCAL-1"}) == ("SYN-LOCAL-1",)
    assert study_definition("SYN-LOCAL-1").rule_version("eligibility", 2) == (
        "SYN-LOCAL-1/def-1/eligibility/2"
    )
    with pytest.raises(StudyDefinitionError, match="defines study"):
        served_studies({"TL_STUDIES": "SYN-LOCAL-2"})


def test_record_keys_are_the_first_studys_keys_and_prefixed_for_others() -> None:
    assert record_key(DEFAULT_STUDY_ID, "S-001") == "S-001"
    assert record_key(None, "S-001") == "S-001"
    assert record_key(SECOND, "S-001") == f"{SECOND}/S-001"


# --- the routes and the records they write ---------------------------------------------


async def test_a_command_records_and_publishes_the_study_of_its_token(
    client: httpx.AsyncClient, application: EnrollmentApplication
) -> None:
    answer = await client.post(
        f"/studies/{SECOND}/subjects", json=registration("S-101"), headers=coordinator(SECOND)
    )
    assert answer.status_code == 201, answer.text
    first = await client.post("/subjects", json=registration("S-102"), headers=coordinator(None))
    assert first.status_code == 201, first.text
    outbox = memory_outbox(application, PUBLICATION)
    published = {
        json.loads(out.value or b"{}")["subject"]: out
        for out in outbox.events(0, 100)
        if out.event_type == "SubjectRegistered.v1"
    }
    second = json.loads(published["S-101"].value or b"{}")
    assert second["studyid"] == SECOND and published["S-101"].key == f"{SECOND}/S-101"
    first_record = json.loads(published["S-102"].value or b"{}")
    assert first_record["studyid"] == DEFAULT_STUDY_ID and published["S-102"].key == "S-102"
    studies = {e.subject_id: e.provenance.study_id for e in stored(application, Subject.Event)}
    assert studies == {"S-101": SECOND, "S-102": DEFAULT_STUDY_ID}


@pytest.mark.parametrize(
    ("path", "token_study"),
    [("/subjects", SECOND), (f"/studies/{SECOND}/subjects", None),
     (f"/studies/{DEFAULT_STUDY_ID}/subjects", SECOND)],
)  # fmt: skip
async def test_a_token_of_another_study_is_refused_and_the_refusal_recorded(
    client: httpx.AsyncClient, application: EnrollmentApplication, path: str, token_study: str
) -> None:
    answer = await client.post(path, json=registration("S-201"), headers=coordinator(token_study))
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "study_not_granted"
    assert body["details"]["token_study_id"] == (token_study or DEFAULT_STUDY_ID)
    (denied,) = stored(application, AccessDenial.AccessDenied)
    assert denied.denial.reason_code == "study_not_granted"
    # recorded in the study the path names: the refused attempt was on its records
    assert denied.denial.study_id == (SECOND if SECOND in path else DEFAULT_STUDY_ID)
    assert not stored(application, Subject.Event)


async def test_a_study_not_served_is_not_found(client: httpx.AsyncClient) -> None:
    answer = await client.get("/studies/NCT00000000/subjects/S-1", headers=coordinator(None))
    assert answer.status_code == 404
    assert answer.json()["code"] == "study_not_served"
    assert answer.json()["details"]["served"] == [DEFAULT_STUDY_ID, SECOND]


async def test_the_first_study_answers_with_and_without_its_prefix(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/subjects", json=registration("S-301"), headers=coordinator(None))
    assert created.status_code == 201
    plain = await client.get("/subjects/S-301", headers=coordinator(None))
    prefixed = await client.get(
        f"/studies/{DEFAULT_STUDY_ID}/subjects/S-301", headers=coordinator(DEFAULT_STUDY_ID)
    )
    assert plain.status_code == prefixed.status_code == 200
    assert plain.json() == prefixed.json()


@pytest.mark.parametrize("study", ["NCT00000000", "-bad", "a%20b", "0"])
async def test_a_study_not_served_or_not_a_study_id_records_nothing(
    client: httpx.AsyncClient, application: EnrollmentApplication, study: str
) -> None:
    """A refusal never names a study that is not served: a denial naming one could not be
    published (its studyid) and would hold back its key's records (the fuzzer found it)."""
    answer = await client.post(
        f"/studies/{study}/subjects", json=registration("S-401"), headers=coordinator(SECOND)
    )
    assert answer.status_code in (404, 422), answer.text
    assert not stored(application, AccessDenial.AccessDenied)
    assert not stored(application, Subject.Event)
