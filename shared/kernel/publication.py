"""What a service publishes: every event class its records can store, mapped by class to
its published contract.

A ``Publication`` is built once per service (``services/<name>/publication.py``) from
the service's record classes (aggregates) and a table keyed by event *class*. It checks
itself when it is built: an event class that a record can store but the table does not
map, or a table entry that no record stores, stops the service at import with the names
of the classes (a forgotten mapping once halted a relay at run time; now it cannot start).

Denials (``AccessDenial.AccessDenied``) and signatures (each subject record's
``RecordSigned``) are recorded by every service and mapped here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, CommandMethodDecorator

from shared.contracts.security import AccessDeniedV1, RecordSignedV1, RecordSignedV2
from shared.kernel.access import AccessDenial, Denial, access_denied_contract, signature_contract
from shared.kernel.envelope import ActorV1, EventData, SourceV1, study_key
from shared.kernel.provenance import Provenance
from shared.kernel.records import SubjectRecord

_EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:trial-ledger:event")

Fields = Callable[[Any], Mapping[str, Any]]  # a stored event's own published fields
Mapped = tuple[type[EventData], Fields]  # the contract it becomes, and how


def event_id(record_id: UUID, version: int) -> UUID:
    """A stored event's id: the same every time it is published, so consumers can dedupe."""
    return uuid5(_EVENT_ID_NAMESPACE, f"{record_id}/{version}")


class UnmappedEvents(TypeError):
    """A service's publication table does not match the events its records can store."""


class Unpublishable(Exception):
    """A stored event could not be turned into its published form (a defect: the relay
    quarantines it, see ``shared.adapters.outbox``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stored_event_classes(record: type[Aggregate]) -> list[type[Aggregate.Event]]:
    """Every event class ``record`` can store: the class each of its ``@event`` methods
    triggers, inherited ones included (a subject record's signatures are
    ``SubjectRecord.RecordSigned``, the class of the method's own owner)."""
    found: set[type[Aggregate.Event]] = set()
    for owner in record.__mro__:
        for value in vars(owner).values():
            if isinstance(value, CommandMethodDecorator):
                given: Any = value.given_event_cls
                found.add(given or getattr(owner, str(value.event_cls_name)))
    return sorted(found, key=lambda cls: cls.__qualname__)


class Publication:
    """One service's map from stored event classes to published contracts."""

    def __init__(
        self,
        service: str,
        records: Mapping[type[Aggregate], str],
        events: Mapping[type[Aggregate.Event], Mapped],
        occurred_at: Callable[[Any], datetime] = lambda event: event.timestamp,
        record_type_of: Callable[[Any], str] | None = None,
        denials: tuple[type[EventData], ...] = (AccessDeniedV1,),
    ) -> None:
        """``records``: each record class of the service and its published ``record_type``;
        ``events``: each event class to its contract and a function giving the contract's
        own fields; ``occurred_at``: the clinical time of an event (default: recorded);
        ``record_type_of``: the record type of an event whose class several of the
        records store (signatures), required only then; ``denials``: the contracts its
        denials are published as (``AccessDenied.v2`` only where a denial names the account
        a refused change was for: identity)."""
        self.service = service
        self.records = dict(records)
        self.occurred_at = occurred_at
        self._record_types: dict[type, set[str]] = {}
        for record, record_type in self.records.items():
            for cls in stored_event_classes(record):
                self._record_types.setdefault(cls, set()).add(record_type)
        self._record_type_of = record_type_of
        self._denials = frozenset(denials)
        self._mapped: dict[type, Mapped] = {**events}
        if any(issubclass(record, SubjectRecord) for record in self.records):
            self._mapped.setdefault(SubjectRecord.RecordSigned, (RecordSignedV2, _no_fields))
        self._check()

    @property
    def storable(self) -> list[type]:
        """Every event class this service can store, its denials included."""
        return [*sorted(self._record_types, key=lambda c: c.__qualname__), _DENIED]

    @property
    def events(self) -> dict[type, Mapped]:
        """The table: each stored event class, its contract and its fields."""
        return dict(self._mapped)

    @property
    def contracts(self) -> list[type[EventData]]:
        """Every contract this service publishes, by event type."""
        found = {contract for contract, _ in self._mapped.values()} | self._denials
        if SubjectRecord.RecordSigned in self._mapped:
            found.add(RecordSignedV1)  # records signed before scheme v2 publish as they did
        return sorted(found, key=lambda contract: contract.event_type)

    def to_contract(self, event: Any) -> EventData:
        """The published form of a stored event; ``Unpublishable`` if it has none."""
        cls = type(event)
        try:
            if cls is _DENIED:
                denied = access_denied_contract(event, self.service, self.event_id(event))
                if type(denied) not in self._denials:  # a defect: it would be unannounced
                    raise TypeError(f"{self.service} does not publish {denied.event_type}")
                return denied
            contract, fields = self._mapped[cls]
            common = self._common(event)
            if cls is SubjectRecord.RecordSigned:
                return signature_contract(event, common)
            return contract(**{**common, **fields(event)})
        except Exception as error:  # a defect: name it, with the event it happened on
            raise Unpublishable(
                f"{cls.__qualname__} v{event.originator_version} of record "
                f"{event.originator_id}: {type(error).__name__}: {error}"[:1000],
            ) from error

    def key(self, event: Any, unprefixed_study: str | None) -> str:
        """The Kafka key of a stored event: its subject, or for an event about no subject
        (an account, a safety review, a denial outside any subject) its record id, after its
        study unless that is ``unprefixed_study``, the deployment's first (``study_key``).
        The same rule as ``CloudEvent.kafka_key``, computed without
        the contract, so that an event that cannot be published is still held in its key's
        order."""
        key = _denied_subject(event) or _subject(event) or str(event.originator_id)
        return study_key(self.study(event), key, unprefixed_study).decode()

    @staticmethod
    def study(event: Any) -> str | None:
        """The study a stored event recorded (its command's token's), None if none."""
        denial: Denial | None = getattr(event, "denial", None) if type(event) is _DENIED else None
        if denial is not None:
            return denial.study_id
        provenance: Provenance | None = getattr(event, "provenance", None)
        return None if provenance is None else provenance.study_id

    @staticmethod
    def event_id(event: Any) -> UUID:
        return event_id(event.originator_id, event.originator_version)

    def _common(self, event: Any) -> dict[str, Any]:
        """The fields every published event carries (docs/integrating.md, Envelope)."""
        provenance: Provenance = event.provenance
        actor = provenance.actor
        return {
            "event_id": self.event_id(event),
            "subject_id": _subject(event),
            "record_type": self._record_type(event),
            "record_id": event.originator_id,
            "version": event.originator_version,
            "occurred_at": self.occurred_at(event),
            "recorded_at": event.timestamp,
            "actor": ActorV1(
                user_id=actor.user_id,
                printed_name=actor.printed_name,
                role=actor.role,
                site=actor.site,
            ),
            "correlation_id": provenance.correlation_id,
            "causation_id": provenance.causation_id,
            "source": SourceV1(service=self.service, client_id=provenance.client_id),
        }

    def _record_type(self, event: Any) -> str:
        (only, *more) = self._record_types[type(event)]
        return self._record_type_of(event) if more and self._record_type_of else only

    def _check(self) -> None:
        shared_classes = [c for c, types in self._record_types.items() if len(types) > 1]
        if shared_classes and self._record_type_of is None:
            raise UnmappedEvents(
                f"the {self.service} publication needs record_type_of: several records "
                f"store {_names(shared_classes)}"
            )
        storable = set(self._record_types)
        missing = storable - set(self._mapped)
        unknown = set(self._mapped) - storable
        if missing or unknown:
            raise UnmappedEvents(
                f"the {self.service} publication does not match its records: "
                f"stored but not mapped: {_names(missing) or 'none'}; "
                f"mapped but never stored: {_names(unknown) or 'none'}"
            )


_DENIED = AccessDenial.AccessDenied


def _denied_subject(event: Any) -> str | None:
    # a denial names the subject of the refused command, if it had one
    denial: Denial | None = getattr(event, "denial", None) if type(event) is _DENIED else None
    return None if denial is None else denial.subject_id


def _subject(event: Any) -> str | None:
    # only a subject record's events name a subject (a safety review names none)
    return event.subject_id if isinstance(event, SubjectRecord.Event) else None


def _names(classes: Iterable[type]) -> str:
    return ", ".join(sorted(cls.__qualname__ for cls in classes))


def _no_fields(_event: Any) -> Mapping[str, Any]:
    return {}


def fields_of(*names: str) -> Fields:
    """The event's attributes ``names`` as they are (tuples as lists)."""

    def fields(event: Any) -> dict[str, Any]:
        values = {name: getattr(event, name) for name in names}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    return fields
