"""docs/asyncapi.yaml is valid AsyncAPI 3.0.0, self-consistent, and true to real events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT7

from shared.contract_docs import ASYNCAPI, documents
from shared.kernel.envelope import CloudEvent
from tests.enrollment.test_publication import published

ROOT = Path(__file__).resolve().parents[2]
VENDORED = Path(__file__).with_name("asyncapi-3.0.0.schema.json")
VENDORED_SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"
BASE = "https://trial-ledger.invalid/asyncapi.json"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return documents(ROOT)


@pytest.fixture(scope="module")
def asyncapi(generated: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(generated[ASYNCAPI])
    return document


def test_the_vendored_schema_is_the_recorded_release() -> None:
    assert hashlib.sha256(VENDORED.read_bytes()).hexdigest() == VENDORED_SHA256


def test_the_document_is_valid_against_the_asyncapi_3_schema(asyncapi: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(VENDORED.read_text()))
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(asyncapi)]
    assert asyncapi["asyncapi"] == "3.0.0"
    assert not errors, "\n".join(errors[:20])


def test_the_asyncapi_schema_refuses_a_broken_document(asyncapi: dict[str, Any]) -> None:
    broken = {**asyncapi, "operations": {"publish": {"action": "emit", "channel": {}}}}
    assert not jsonschema.Draft7Validator(json.loads(VENDORED.read_text())).is_valid(broken)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, itself included, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def _refs(node: Any) -> Iterator[str]:
    return (o["$ref"] for o in _objects(node) if isinstance(o.get("$ref"), str))


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for token in ref[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    for ref in _refs(asyncapi):
        _resolve(asyncapi, ref)


def test_every_operation_sends_its_own_channels_messages(asyncapi: dict[str, Any]) -> None:
    for name, operation in asyncapi["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        channel = _resolve(asyncapi, channel_ref)
        listed = [m["$ref"] for m in operation["messages"]]
        assert listed == [f"{channel_ref}/messages/{m}" for m in channel["messages"]], name
        assert all(
            _resolve(asyncapi, ref)["$ref"].startswith("#/components/messages/") for ref in listed
        )


def test_every_topic_has_a_channel_with_its_key_and_the_envelope(
    asyncapi: dict[str, Any],
) -> None:
    trait = asyncapi["components"]["messageTraits"]["CloudEventStructured"]
    assert "subject id" in trait["bindings"]["kafka"]["key"]["description"]
    assert trait["contentType"] == "application/cloudevents+json; charset=utf-8"
    addresses = {c["address"] for c in asyncapi["channels"].values()}
    assert {"trialledger.identity.events", "trialledger.enrollment.events"} <= addresses


def _payload_validator(asyncapi: dict[str, Any], event_type: str) -> jsonschema.Draft7Validator:
    registry: Registry[Any] = Registry().with_resource(BASE, DRAFT7.create_resource(asyncapi))
    schema = {"$ref": f"{BASE}#/components/messages/{event_type}/payload"}
    return jsonschema.Draft7Validator(schema, registry=registry)


def _event_json(event: CloudEvent) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(event.to_kafka_value())
    return value


def test_real_enrollment_events_match_their_messages_and_schemas(
    asyncapi: dict[str, Any], generated: dict[str, str]
) -> None:
    channel = asyncapi["channels"]["enrollment"]
    for event in published():
        assert event.type in channel["messages"], event.type
        _payload_validator(asyncapi, event.type).validate(_event_json(event))
        (schema_path,) = [p for p in generated if p.endswith(f"/{event.type}.json")]
        jsonschema.Draft202012Validator(json.loads(generated[schema_path])).validate(event.data)
    envelope = json.loads(generated["docs/schemas/CloudEvent.json"])
    jsonschema.Draft202012Validator(envelope).validate(_event_json(published()[0]))


def test_a_message_payload_refuses_another_types_data(asyncapi: dict[str, Any]) -> None:
    registered, consent = published()[:2]
    wrong_type = {**_event_json(registered), "type": consent.type}
    missing_field = _event_json(consent)
    del missing_field["data"]["form_version"]
    assert not _payload_validator(asyncapi, registered.type).is_valid(wrong_type)
    assert not _payload_validator(asyncapi, consent.type).is_valid(missing_field)


def _object_titles(node: Any) -> Iterator[str]:
    """The title of every object schema in ``node`` (what a code generator names a class)."""
    for o in _objects(node):
        if isinstance(o.get("title"), str) and (o.get("type") == "object" or "properties" in o):
            yield o["title"]


def test_every_message_is_named_and_its_payload_titled_after_its_type(
    asyncapi: dict[str, Any],
) -> None:
    for event_type, message in asyncapi["components"]["messages"].items():
        name = event_type.replace(".v", "V")  # SubjectRegistered.v1: SubjectRegisteredV1
        assert message["name"] == message["payload"]["title"] == name
        assert message["payload"]["properties"]["type"]["const"] == event_type
        data = message["payload"]["properties"]["data"]["$ref"]
        assert _resolve(asyncapi, data)["title"] == f"{name}Data"


def test_no_two_object_schemas_share_a_title(asyncapi: dict[str, Any]) -> None:
    """Generators (Modelina) make one class per title: a shared one merges payloads."""
    titles = list(_object_titles(asyncapi["components"]))
    shared = sorted({t for t in titles if titles.count(t) > 1})
    assert not shared, f"titles of several object schemas: {shared}"
    assert "Data" not in titles


def test_a_shared_title_is_seen() -> None:
    twice = {"a": {"type": "object", "title": "Data"}, "b": [{"properties": {}, "title": "Data"}]}
    assert list(_object_titles(twice)) == ["Data", "Data"]
