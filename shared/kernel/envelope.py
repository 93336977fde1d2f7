"""The published event: common fields of every contract, and the CloudEvents 1.0
envelope that carries it on Kafka.

Mode: CloudEvents *structured* JSON (content type ``application/cloudevents+json``),
so a record's value alone is the whole event and the ledger can keep it byte for
byte. The Kafka key is the subject id, prefixed with the study's id for every study but
the deployment's first (``CloudEvent.kafka_key``).

The study a record belongs to is the extension attribute ``studyid``, not part of
``source``: ``sequence`` counts positions in one service's log, so ``source`` names the
service; and ``data`` is a contract's payload, unchanged by where it is used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class Contract(BaseModel):
    """Base of every boundary model: immutable, and unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ActorV1(Contract):
    """Who acted: from the authenticated principal, never from a request body."""

    user_id: str
    printed_name: str
    role: str
    site: str


class SourceV1(Contract):
    """Which service recorded the event, and through which client or device."""

    service: str
    client_id: str | None = None


class EventData(Contract):
    """Fields every published event carries besides its own (docs/integrating.md, Envelope).

    Subclasses set ``event_type`` (versioned, e.g. ``ConsentSigned.v1``). A new field
    or meaning is a new subclass with a new version, never an edit of an old one.
    """

    event_type: ClassVar[str]

    event_id: UUID
    subject_id: str | None = Field(description="the trial subject, where the event has one")
    record_type: str
    record_id: UUID
    version: int = Field(ge=1, description="position of the event in its record")
    occurred_at: AwareDatetime = Field(description="clinical time, given by the user")
    recorded_at: AwareDatetime = Field(description="server clock, UTC")
    actor: ActorV1
    reason: str | None = None
    correlation_id: str
    causation_id: str | None = None
    source: SourceV1

    @field_validator("occurred_at", "recorded_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class ReasonGiven(EventData):
    """An event that must say why (a withdrawal, a correction, a refusal to infuse...): its
    envelope ``reason``, optional elsewhere, is required and not empty. The field keeps its
    place among the envelope's, so a contract's schema is the same as with it declared.
    Name it first among a contract's bases: pydantic takes an inherited field from the first."""

    reason: str = Field(min_length=1)


class CloudEvent(Contract):
    """A CloudEvents 1.0 structured-mode event, with the ledger's extension attributes."""

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    source: str
    type: str
    subject: str | None = None
    time: AwareDatetime
    recordedtime: AwareDatetime
    sequence: str = Field(description="position in the source's notification log")
    correlationid: str
    causationid: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    # Set on every record of the compact form (below); absent from records published before.
    dataschema: str | None = Field(default=None, json_schema_extra={"format": "uri"})
    # The study of the record (its protocol id); absent from records stored before studies
    # were named, which belong to the deployment's first study.
    studyid: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    data: dict[str, Any]

    @classmethod
    def wrap(
        cls, data: EventData, sequence: int, compact: bool = False, study_id: str | None = None
    ) -> CloudEvent:
        """Envelope ``data``; ``sequence`` is the notification id in the service's log.
        ``compact``: the form published from a store's cutover on (``to_kafka_value``);
        ``study_id``: the study the stored event recorded, if it recorded one."""
        return cls(
            id=data.event_id,
            source=f"/trial-ledger/{data.source.service}",
            type=data.event_type,
            subject=data.subject_id,
            time=data.occurred_at,
            recordedtime=data.recorded_at,
            sequence=str(sequence),
            correlationid=data.correlation_id,
            causationid=data.causation_id,
            dataschema=schema_uri(data.event_type) if compact else None,
            studyid=study_id,
            data=data.model_dump(mode="json"),
        )

    def kafka_key(self, unprefixed_study: str | None = None) -> bytes:
        """The subject id, so that a subject's events stay in order, else the record id;
        prefixed ``<studyid>/`` unless the record names no study or ``unprefixed_study``, the
        deployment's first study, whose records were keyed by the subject alone before
        studies were named (a subject's records stay in one partition)."""
        key = self.subject or str(self.data["record_id"])
        return study_key(self.studyid, key, unprefixed_study)

    def to_kafka_value(self) -> bytes:
        """The record's value, in one of two forms, told apart by ``dataschema``:

        - compact (``dataschema`` set): an optional attribute without a value is absent, as
          CloudEvents SDKs write and expect;
        - the first form (no ``dataschema``): ``subject`` and ``causationid`` are null when
          unset, as every record was published before a store's cutover to the compact form.

        A stored event renders the same bytes on every publication and in
        ``GET /store/events``, which the ledger compares byte for byte; and a record read
        back with ``from_kafka_value`` renders its own bytes again, in either form."""
        optional = ("subject", "causationid") if self.dataschema else ()
        always = ("dataschema", "studyid")  # absent from every record without them
        unset = {name for name in (*optional, *always) if getattr(self, name) is None}
        return self.model_dump_json(exclude=unset or None).encode("utf-8")

    @classmethod
    def from_kafka_value(cls, value: bytes) -> CloudEvent:
        return cls.model_validate_json(value)


def study_key(study_id: str | None, key: str, unprefixed_study: str | None) -> bytes:
    """A record's Kafka key: ``key`` (a subject or record id), after ``<study_id>/`` for a
    study other than ``unprefixed_study``."""
    if study_id is None or study_id == unprefixed_study:
        return key.encode()
    return f"{study_id}/{key}".encode()


SCHEMA_URN = "urn:trial-ledger:schema:"


def schema_uri(event_type: str) -> str:
    """The ``dataschema`` of ``event_type``'s records: the ``$id`` of its published JSON
    Schema (``docs/schemas/<module>/<event_type>.json``). A name, not a location, so that
    a record's bytes do not depend on where the schemas are served."""
    return SCHEMA_URN + event_type


def contract_registry(*contracts: type[EventData]) -> dict[str, type[EventData]]:
    """Map ``event_type`` to its model, refusing two models with one type."""
    registry: dict[str, type[EventData]] = {}
    for contract in contracts:
        if contract.event_type in registry:
            raise ValueError(f"two contracts claim {contract.event_type}")
        registry[contract.event_type] = contract
    return registry
