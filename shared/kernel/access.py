"""Security records every service keeps: refused commands (Part 11 §11.10(d)(g):
denials are audited) and the published form of electronic signatures.

Every service records a denial in its own event store, as an ``AccessDenied`` event
of a record of its own, and publishes it on its topic like any other event.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.domain import event
from eventsourcing.utils import register_topic

from shared.contracts.security import (
    AccessDeniedV1,
    AccessDeniedV2,
    RecordSignedV1,
    RecordSignedV2,
)
from shared.kernel.envelope import ActorV1, SourceV1
from shared.kernel.principals import Principal
from shared.kernel.records import Record
from shared.kernel.signatures import Signature, SignatureV1


@dataclass(frozen=True)
class Denial:
    """Who tried what, and why it was refused."""

    # Stored events name it by the module it was first stored from (shared.access).
    stored_as: ClassVar[str] = "shared.access.Denial"

    user_id: str
    printed_name: str
    site: str
    roles: tuple[str, ...]
    command: str
    reason_code: str
    subject_id: str | None
    correlation_id: str
    client_id: str | None
    # the account a refused account change was for (identity); None for other denials,
    # and in denials stored before it was recorded
    target_user_id: str | None = None
    # the study of the refused command (the token's); None in denials stored before
    study_id: str | None = None

    @classmethod
    def of(
        cls,
        principal: Principal,
        command: str,
        reason_code: str,
        correlation_id: str,
        client_id: str | None,
        subject_id: str | None = None,
        target_user_id: str | None = None,
        study_id: str | None = None,
    ) -> Denial:
        """``principal``'s refused ``command``, with every role it holds (and the account
        it was for, ``target_user_id``, when it would have changed one), in the study its
        token is for, or ``study_id``: the study a refused command reached for."""
        return cls(
            user_id=principal.user_id,
            printed_name=principal.printed_name,
            site=principal.site,
            roles=tuple(sorted(principal.roles)),
            command=command,
            reason_code=reason_code,
            subject_id=subject_id,
            correlation_id=correlation_id,
            client_id=client_id,
            target_user_id=target_user_id,
            study_id=study_id or principal.study_id,
        )


class AccessDenial(Record):
    """One refused command."""

    @event("AccessDenied")
    def __init__(self, denial: Denial) -> None:
        self.denial = denial


# Stored events name the record and its events by the module they were first stored from:
# go on writing those topics, and read them back (eventsourcing resolves the old module).
register_topic("shared.access", sys.modules[__name__])
for _stored in (AccessDenial, AccessDenial.Event, AccessDenial.Created, AccessDenial.AccessDenied):
    setattr(_stored, "TOPIC", f"shared.access:{_stored.__qualname__}")  # noqa: B010


def signature_contract(event: Any, common: dict[str, Any]) -> RecordSignedV1 | RecordSignedV2:
    """The published form of a ``RecordSigned`` event (``common``: the shared fields): a
    scheme v2 signature is ``RecordSigned.v2``; one stored before v2 stays ``RecordSigned.v1``."""
    signature: Signature | SignatureV1 = event.signature
    if isinstance(signature, Signature):
        return RecordSignedV2(**common, **signature.published())
    return RecordSignedV1(
        **common,
        signed_record_id=signature.record_id,
        signed_version=signature.record_version,
        signer_id=signature.signer_id,
        printed_name=signature.printed_name,
        meaning=signature.meaning,
        signed_at=signature.signed_at,
        content_hash=signature.content_hash,
        assertion_id=signature.assertion_id,
        key_id=signature.key_id,
        algorithm=signature.algorithm,
        value=signature.value,
    )


def access_denied_contract(
    event: Any, service: str, event_id: Any
) -> AccessDeniedV1 | AccessDeniedV2:
    """The published form of an ``AccessDenied`` event: ``AccessDenied.v2`` when it names the
    account a refused change was for, else ``AccessDenied.v1`` as before."""
    denial: Denial = event.denial
    target = {} if denial.target_user_id is None else {"target_user_id": denial.target_user_id}
    contract = AccessDeniedV1 if denial.target_user_id is None else AccessDeniedV2
    return contract(
        event_id=event_id,
        subject_id=denial.subject_id,
        record_type="AccessDenial",
        record_id=event.originator_id,
        version=event.originator_version,
        occurred_at=event.timestamp,
        recorded_at=event.timestamp,
        actor=ActorV1(
            user_id=denial.user_id,
            printed_name=denial.printed_name,
            role=",".join(denial.roles),
            site=denial.site,
        ),
        correlation_id=denial.correlation_id,
        source=SourceV1(service=service, client_id=denial.client_id),
        command=denial.command,
        reason_code=denial.reason_code,
        roles=list(denial.roles),
        **target,
    )
