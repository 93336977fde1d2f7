"""The base of every record about one trial subject (no I/O), and of every record named
by a natural key (``NamedRecord``: a user's account too).

Every event of such a record names the subject, so that it can be published alone;
and a signed step is followed, in the same save, by a ``RecordSigned`` event binding
the signature to the version it signs (see ``shared.kernel.signatures``).
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from eventsourcing.domain import Aggregate, MetaAggregate, event
from eventsourcing.utils import register_topic

from shared.kernel.provenance import Attribution, Provenance
from shared.kernel.signatures import Signature, SignatureV1


class SignatureNotForThisRecord(ValueError):
    """A signature binds to the record version it was made for, and to no other."""

    code = "signature_not_for_this_record"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = {}


if TYPE_CHECKING:

    class _RecordType(MetaAggregate[Any]):
        # The event classes of a record are made at import by its ``@event("Name")``
        # methods; this tells type checkers that ``Record.Name`` is one. A misspelt name
        # still fails, at import, in the service's publication table.
        def __getattr__(cls, name: str) -> type[Aggregate.Event]: ...

    class Record(Aggregate, metaclass=_RecordType):
        """An aggregate whose ``@event`` classes can be named as attributes."""

else:
    Record = Aggregate


def named_in_its_study(*_: Any, **__: Any) -> NoReturn:
    """``create_id`` of a record named in its study's namespace: whoever creates one passes
    its id, derived from the study it acts in. There is no default study (a fall-back to
    the first study's namespace would file a second study's record under the first's id)."""
    raise TypeError("this record is named in its study's namespace: pass its id")


class NamedRecord(Record):
    """A record whose every event names it by its natural key, the attribute ``named_by``
    (a subject id, a user id), so that an event can be published alone."""

    named_by: ClassVar[str]

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault(self.named_by, getattr(self, self.named_by))
        super().trigger_event(event_class, **kwargs)


class SubjectRecord(NamedRecord):
    """A record about one subject; subclasses set ``subject_id`` in their first event."""

    class Event(Aggregate.Event):
        subject_id: str

    named_by = "subject_id"
    subject_id: str

    @property
    def signatures(self) -> tuple[Signature | SignatureV1, ...]:
        """Signatures of this record, in the order they were made (those made before scheme
        v2 are ``SignatureV1``); each gives its ``manifestation()``."""
        signatures: tuple[Signature | SignatureV1, ...] = self.__dict__.get("_signatures", ())
        return signatures

    def sign(self, signature: Signature, attribution: Attribution) -> None:
        """Bind a signature to the event just decided: it must name this record and version."""
        if (signature.signed_record_id, signature.signed_version) != (self.id, self.version):
            raise SignatureNotForThisRecord(
                f"the signature is for {signature.signed_record_id} v{signature.signed_version}, "
                f"not {self.id} v{self.version} (subject {self.subject_id})"
            )
        self._record_signed(signature, attribution.now, attribution.provenance)

    @event("RecordSigned")
    def _record_signed(
        self, signature: Signature | SignatureV1, occurred_at: datetime, provenance: Provenance
    ) -> None:
        self._signatures = (*self.signatures, signature)


# Events stored before each service's record had events of its own name this module as it
# was then, shared.records (``shared.records:SubjectRecord.RecordSigned``): read them back.
# Subclasses make their own event classes, so nothing new is stored under that topic.
register_topic("shared.records", sys.modules[__name__])
