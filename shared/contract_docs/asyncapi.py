"""The AsyncAPI 3.0.0 document of every topic: its key, its messages, their envelope."""

from __future__ import annotations

import copy
import inspect
from typing import Any

from shared.adapters.topics import FOREVER
from shared.contract_docs.discovery import Channel
from shared.contract_docs.schemas import component_schemas
from shared.kernel.envelope import CONTENT_TYPE, CloudEvent, EventData

SCHEMAS = "#/components/schemas/"
ENVELOPE_TRAIT = "CloudEventStructured"
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"  # deploy/local/infra.sh

KEY = (
    "the trial subject id (UTF-8), so that a subject's events keep their order; the "
    "record id when the event has no subject (subject null)"
)

DESCRIPTION = "\n\n".join(
    (
        "Every event a Trial Ledger service commits is published, in commit order, to that "
        "service's topic as a CloudEvents 1.0 event in **structured mode**: the record's "
        "value is the whole event as JSON, with the header `content-type: "
        "application/cloudevents+json; charset=utf-8`. The event type (CloudEvents `type`, "
        "e.g. `ConsentSigned.v1`) says which schema `data` follows.",
        "Delivery is at least once: deduplicate by the CloudEvents `id`, which a republished "
        "event keeps. Topics keep every event forever, so a new consumer can replay from "
        "offset 0.",
        "Versioning: an event type is never edited once published; a new field or meaning "
        "is a new type version (`.v2`) beside the old one. This document's version is the "
        "Trial Ledger release it was generated from (`make contracts`); see "
        "docs/integrating.md.",
    )
)


def document(version: str, channels: list[Channel]) -> dict[str, Any]:
    """The AsyncAPI document of ``channels``, at release ``version``."""
    events = sorted({e for c in channels for e in c.events}, key=lambda e: e.event_type)
    refs, schemas = component_schemas([CloudEvent, *events], SCHEMAS)
    envelope = schemas[refs[CloudEvent].removeprefix(SCHEMAS)]
    for event in events:  # each event's data under a name of its own: <Type>V<N>Data
        schema = schemas.pop(refs[event].removeprefix(SCHEMAS))
        schemas[data_name(event)] = {**schema, "title": data_name(event)}
        refs[event] = SCHEMAS + data_name(event)
    # the envelope's own `data` is any event's: not a class named Data shared by all
    data_property = envelope["properties"]["data"]
    envelope["properties"]["data"] = {**data_property, "title": "CloudEventData"}
    schemas["KafkaHeaders"] = _headers()
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Trial Ledger events", "version": version, "description": DESCRIPTION},
        "defaultContentType": CONTENT_TYPE,
        "servers": {"kafka": _server()},
        "channels": {c.service: _channel(c) for c in channels},
        "operations": {f"publish_{c.service}": _operation(c) for c in channels},
        "components": {
            "schemas": schemas,
            "messages": {e.event_type: _message(e, refs[e], envelope) for e in events},
            "messageTraits": {ENVELOPE_TRAIT: _envelope_trait()},
        },
    }


def _server() -> dict[str, Any]:
    return {
        "host": "{bootstrap}",
        "protocol": "kafka",
        "description": "The deployment's Kafka cluster (its TL_KAFKA_BOOTSTRAP).",
        "variables": {
            "bootstrap": {"default": DEFAULT_BOOTSTRAP, "description": "host:port of a broker"}
        },
    }


def _channel(channel: Channel) -> dict[str, Any]:
    retention = {key: int(value) for key, value in FOREVER.items() if key != "cleanup.policy"}
    return {
        "address": channel.topic,
        "title": f"{channel.service} events",
        "description": f"Everything the {channel.service} service records, from "
        f"`{channel.source}`. Key: {KEY}. The name can be changed per deployment with "
        f"TL_{channel.service.upper()}_TOPIC.",
        "messages": {
            e.event_type: {"$ref": f"#/components/messages/{e.event_type}"} for e in channel.events
        },
        "bindings": {
            "kafka": {
                "topic": channel.topic,
                "topicConfiguration": {**retention, "cleanup.policy": [FOREVER["cleanup.policy"]]},
                "bindingVersion": "0.5.0",
            }
        },
    }


def _operation(channel: Channel) -> dict[str, Any]:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel.service}"},
        "summary": f"The {channel.service} service's relay publishes each committed event.",
        "messages": [
            {"$ref": f"#/channels/{channel.service}/messages/{e.event_type}"}
            for e in channel.events
        ],
    }


def event_name(event: type[EventData]) -> str:
    """The event type as a name code generators can use: ``SubjectRegistered.v1`` is
    ``SubjectRegisteredV1``, the title of its message's payload (the whole record)."""
    name, version = event.event_type.rsplit(".v", 1)
    return f"{name}V{version}"


def data_name(event: type[EventData]) -> str:
    """The title of the event's ``data`` schema: ``SubjectRegisteredV1Data``."""
    return f"{event_name(event)}Data"


def _message(event: type[EventData], data_ref: str, envelope: dict[str, Any]) -> dict[str, Any]:
    # The payload is the envelope's schema spelled out for this type (not an allOf of the
    # shared envelope and an override), titled, so that a code generator makes one class
    # per event type whose `data` is that type's data class.
    properties = {
        **copy.deepcopy(envelope["properties"]),
        "type": {**envelope["properties"]["type"], "const": event.event_type},
        "data": {"$ref": data_ref},
    }
    payload = {**copy.deepcopy(envelope), "title": event_name(event), "properties": properties}
    payload.pop("description", None)
    message: dict[str, Any] = {
        "name": event_name(event),
        "title": event.event_type,
        "traits": [{"$ref": f"#/components/messageTraits/{ENVELOPE_TRAIT}"}],
        "payload": payload,
    }
    if "__doc__" in vars(event) and event.__doc__:
        message["summary"] = inspect.cleandoc(event.__doc__).split("\n\n")[0].replace("\n", " ")
    return message


def _envelope_trait() -> dict[str, Any]:
    return {
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": f"{SCHEMAS}KafkaHeaders"},
        "correlationId": {
            "location": "$message.payload#/correlationid",
            "description": "the request chain the event belongs to",
        },
        "bindings": {
            "kafka": {"key": {"type": "string", "description": KEY}, "bindingVersion": "0.5.0"}
        },
    }


def _headers() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Kafka record headers (CloudEvents structured mode).",
        "properties": {"content-type": {"const": CONTENT_TYPE}},
        "required": ["content-type"],
    }
