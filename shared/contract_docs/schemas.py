"""JSON Schema of the published events and of their CloudEvents envelope.

Schemas describe the bytes on the topic, so they are pydantic's *serialization* schemas
(a ``Decimal`` is a string there, as ``model_dump(mode="json")`` writes it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.kernel.envelope import CONTENT_TYPE, CloudEvent, EventData, schema_uri

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# What each envelope attribute means to a consumer; the model carries only the types.
ENVELOPE_NOTES = {
    "id": "the event id: derived from the record id and version, so a republished "
    "event keeps it; deduplicate by it",
    "source": "/trial-ledger/<service>",
    "type": "the versioned event type, e.g. ConsentSigned.v1; says how to read data",
    "subject": "the trial subject id; null (or absent) for events without one",
    "time": "clinical time of the act (given by the user), UTC",
    "recordedtime": "server time at which it was recorded, UTC (extension attribute)",
    "sequence": "position in the producing service's notification log, a decimal string "
    "(extension attribute)",
    "correlationid": "the request chain (extension attribute)",
    "causationid": "what caused the command, as the client named it in its X-Causation-Id "
    "header; null (or absent) when it named none (extension attribute)",
    "dataschema": "the $id of the JSON Schema of data, urn:trial-ledger:schema:<type> "
    "(docs/schemas/<module>/<type>.json); set on every record of the compact form, where "
    "an unset subject or causationid is absent; absent from the records a store published "
    "before its cutover to that form, which carry them as null: pick the schema by type",
    "data": "the event's payload, as the schema of its type describes",
}


def event_schema(contract: type[EventData]) -> dict[str, Any]:
    """A standalone schema of one event's ``data``, its ``$id`` what records of the event
    name as their ``dataschema``."""
    schema = contract.model_json_schema(mode="serialization")
    return {"$schema": DIALECT, "$id": schema_uri(contract.event_type), **schema}


def envelope_schema() -> dict[str, Any]:
    """A standalone schema of the CloudEvents envelope, with each attribute explained."""
    schema = _annotated(CloudEvent.model_json_schema(mode="serialization"))
    return {"$schema": DIALECT, "$comment": f"Kafka header content-type: {CONTENT_TYPE}", **schema}


def component_schemas(
    models: list[type[BaseModel]], prefix: str
) -> tuple[dict[type[BaseModel], str], dict[str, Any]]:
    """Each model's ``$ref``, and the schemas of the models and of everything they use,
    referring to each other under ``prefix`` (e.g. ``#/components/schemas/``)."""
    refs, top = models_json_schema(
        [(model, "serialization") for model in models], ref_template=prefix + "{model}"
    )
    definitions: dict[str, Any] = top.get("$defs", {})
    envelope = CloudEvent.__name__
    if envelope in definitions:
        definitions[envelope] = _annotated(definitions[envelope])
    return {model: str(refs[(model, "serialization")]["$ref"]) for model in models}, definitions


def _annotated(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema["properties"]
    unknown = set(ENVELOPE_NOTES) - set(properties)
    if unknown:
        raise KeyError(f"ENVELOPE_NOTES names attributes CloudEvent lacks: {sorted(unknown)}")
    notes = ENVELOPE_NOTES.items()
    described = {name: {**properties[name], "description": text} for name, text in notes}
    return {**schema, "properties": {**properties, **described}}
