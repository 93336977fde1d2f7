"""Wiring of a service's eventsourcing Application to its PostgreSQL event store.

Domain values are frozen dataclasses, enums and dates; this module teaches the
library's JSON transcoder to store them and to give back the same types on replay.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from functools import cache
from types import UnionType
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    JSONTranscoder,
    Notification,
    Recording,
    Transcoding,
)
from eventsourcing.popo import POPOFactory
from eventsourcing.utils import get_topic

from shared.adapters.facts import Fact, FactStore, POPOFactRecorder, PostgresFactRecorder
from shared.kernel.access import AccessDenial, Denial
from shared.kernel.envelope import CloudEvent, EventData
from shared.kernel.principals import SigningAssertion
from shared.kernel.provenance import Actor, Attribution, Provenance
from shared.kernel.publication import stored_event_classes
from shared.kernel.records import SubjectRecord
from shared.kernel.settings import DatabaseSettings
from shared.kernel.signatures import RecordSigner, Signature, SignatureV1

A = TypeVar("A", bound=MutableOrImmutableAggregate[UUID])
R = TypeVar("R", bound=SubjectRecord)


def postgres_env(database: DatabaseSettings) -> dict[str, str]:
    """The eventsourcing environment for a service's own PostgreSQL database."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": database.dbname,
        "POSTGRES_HOST": database.host,
        "POSTGRES_PORT": str(database.port),
        "POSTGRES_USER": database.user,
        "POSTGRES_PASSWORD": database.password,
        "POSTGRES_SCHEMA": database.schema,
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_PRE_PING": "y",
        "CREATE_TABLE": "y",
        # eventsourcing's recorder, writing the facts a save carries (shared.adapters.facts)
        "APPLICATION_RECORDER_TOPIC": get_topic(PostgresFactRecorder),
    }


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassTranscoding(Transcoding):
    """Stores a frozen dataclass as its fields; nested values are transcoded too.

    Stored events name it by its ``stored_as`` class attribute if it has one, else by its
    module and class: a class renamed after events were stored keeps their name there.
    """

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = getattr(cls, "stored_as", f"{cls.__module__}.{cls.__qualname__}")

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        hints = _field_types(self.type)
        return self.type(**{name: _restore(hints.get(name), value) for name, value in data.items()})


class ServiceApplication(Application[UUID]):
    """Base of the services' applications: registers the domain's value types, and holds
    the record signing key of services with signed steps.

    Subclasses name their ``records``; the dataclasses those records' events carry are
    found from the events' fields (``stored_value_types``), so a new one cannot be left
    unregistered (who acted, ``Actor`` and ``Provenance``, signatures and denials are
    registered for all). Enums that subclass ``int`` or ``str`` are stored as plain values
    (JSON never asks for them): the ``@event`` method that applies one turns it back into
    the enum.
    """

    records: ClassVar[tuple[type[Aggregate], ...]] = ()
    # the events that establish facts (``facts_of``), kept as they are saved
    fact_events: ClassVar[tuple[type, ...]] = ()

    def __init__(
        self, env: dict[str, str] | None = None, signer: RecordSigner | None = None
    ) -> None:
        super().__init__(env=env)
        self.signer = signer
        if self.fact_events:
            self.facts.build_facts(self._facts_of_stored)

    def construct_recorder(self) -> ApplicationRecorder:
        """A recorder that keeps facts: eventsourcing's in memory or on PostgreSQL
        (``postgres_env`` names it there); any other would silently keep none."""
        if isinstance(self.factory, POPOFactory):
            return POPOFactRecorder()
        recorder = super().construct_recorder()
        if not isinstance(recorder, PostgresFactRecorder):
            raise TypeError(f"{type(recorder).__name__} keeps no facts: use postgres_env")
        return recorder

    @property
    def facts(self) -> FactStore:
        """The facts kept as events are saved (``shared.adapters.facts``)."""
        recorder: FactStore = self.recorder  # type: ignore[assignment]  # construct_recorder
        return recorder

    def facts_of(self, event: Any) -> Iterable[Fact]:
        """The facts ``event`` establishes (an event of ``fact_events``)."""
        return ()

    def _facts_of_stored(self, notification: Notification) -> Iterable[Fact]:
        if notification.topic not in {get_topic(kind) for kind in self.fact_events}:
            return ()  # decode only the events that establish facts
        return self.facts_of(self.mapper.to_domain_event(notification))

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        # every save passes here: its facts go with its events, into the same transaction
        facts = [fact for event in processing_event.events for fact in self.facts_of(event)]
        if facts:
            processing_event.saved_kwargs["facts"] = facts
        return super()._record(processing_event)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        stored = (Denial, Signature, SignatureV1, Actor, Provenance)
        for transcoding in transcodings_for(
            dict.fromkeys((*stored, *stored_value_types(self.records)))
        ):
            transcoder.register(transcoding)

    def stored_events(self) -> Iterator[tuple[int, Any]]:
        """Every stored event with its notification id, in log order (a trial's stores are
        small; a view would replace this scan for a large one)."""
        start = 1
        while batch := self.recorder.select_notifications(start=start, limit=500):
            for notification in batch:
                yield notification.id, self.mapper.to_domain_event(notification)
            start = batch[-1].id + 1

    def load(self, record_id: UUID, missing: Callable[[], Exception]) -> Any:
        """The aggregate ``record_id``; ``missing()`` is raised when none is stored."""
        try:
            return self.repository.get(record_id)
        except AggregateNotFoundError:
            raise missing() from None

    def save_new(self, aggregate: A, taken: Callable[[], Exception]) -> A:
        """Save a newly created aggregate; ``taken()`` is raised when its id is stored
        already (the natural key, a subject or user id, was used before)."""
        try:
            self.save(aggregate)
        except IntegrityError:
            raise taken() from None
        return aggregate

    def saved_with_retry(
        self,
        load: Callable[[], A],
        decide: Callable[[A], None],
        conflict: Callable[[], Exception],
        attempts: int = 3,
    ) -> A:
        """Load, decide and save one aggregate; a stale save (someone saved first) is
        retried on the reloaded aggregate, and ``conflict()`` is raised after ``attempts``."""
        for _ in range(attempts):
            aggregate = load()
            decide(aggregate)
            try:
                self.save(aggregate)
            except IntegrityError:
                continue
            return aggregate
        raise conflict()

    def sign_last_decision(
        self,
        aggregate: Any,
        signing: SigningAssertion,
        attribution: Attribution,
        to_contract: Callable[[Any], EventData],
    ) -> Signature:
        """Sign the published form of the event just decided (the aggregate's last pending
        one) with this service's record key, for the signer the assertion names."""
        if self.signer is None:
            raise RuntimeError(f"the {self.name} application has no record signing key")
        # The CloudEvent exactly as the relay will publish it, read back as a verifier reads
        # it; its sequence (the log position, set on commit) is not signed.
        published = CloudEvent.wrap(to_contract(aggregate.pending_events[-1]), sequence=0)
        return self.signer.sign(
            json.loads(published.to_kafka_value()),
            signer_id=signing.user_id,
            printed_name=signing.printed_name,
            meaning=signing.meaning.value,
            signed_at=attribution.now,
            assertion_id=signing.assertion_id,
        )

    def decided_and_signed(
        self,
        decide: Callable[[R], None],
        signing: SigningAssertion,
        attribution: Attribution,
        to_contract: Callable[[Any], EventData],
    ) -> Callable[[R], None]:
        """``decide``, then sign the event it decided and record the signature beside it
        (for ``saved_with_retry``: a retried decision is signed again)."""

        def decide_and_sign(record: R) -> None:
            decide(record)
            record.sign(
                self.sign_last_decision(record, signing, attribution, to_contract), attribution
            )

        return decide_and_sign

    def record_denial(self, denial: Denial) -> None:
        """Record a refused command in this service's own store (it is published too)."""
        self.save(AccessDenial(denial))


def stored_value_types(records: Iterable[type[Aggregate]]) -> list[type]:
    """The dataclasses the events of ``records`` carry, those nested in them included."""
    hints = [
        hint
        for record in records
        for event_class in stored_event_classes(record)
        for hint in typing.get_type_hints(event_class).values()
    ]
    found: dict[type, None] = {}
    while hints:
        hint = hints.pop(0)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if hint not in found:
                found[hint] = None
                hints.extend(_field_types(hint).values())
        else:  # a union, a collection, a ClassVar...: the types it is made of
            hints.extend(typing.get_args(hint))
    return list(found)


def transcodings_for(types: Iterable[type]) -> list[Transcoding]:
    """A transcoding per dataclass; two under one stored name would decode one as the other."""
    result: list[Transcoding] = []
    for cls in types:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a dataclass")
        result.append(DataclassTranscoding(cls))
    names = [transcoding.name for transcoding in result]
    if len(set(names)) != len(names):
        raise TypeError(f"two dataclasses are stored under one name: {sorted(names)}")
    return result


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _restore(hint: Any, value: Any) -> Any:
    # JSON has no tuples: give tuple-typed fields their tuples back.
    if isinstance(value, list) and _is_tuple(hint):
        return tuple(value)
    return value


def _is_tuple(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is tuple:
        return True
    if origin in (typing.Union, UnionType):
        return any(_is_tuple(arg) for arg in typing.get_args(hint))
    return False
