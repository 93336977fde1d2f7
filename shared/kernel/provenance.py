"""Who acted and in which request chain: carried by every recorded event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar


class Role(StrEnum):
    """Study roles; a user may hold several."""

    INVESTIGATOR = "investigator"
    SUB_INVESTIGATOR = "sub_investigator"
    STUDY_COORDINATOR = "study_coordinator"
    CELL_THERAPY_PHARMACIST = "cell_therapy_pharmacist"
    MONITOR = "monitor"
    AUDITOR = "auditor"
    ADMINISTRATOR = "administrator"


class Meaning(StrEnum):
    """What an electronic signature means (Part 11 §11.50(a)(3))."""

    AUTHORSHIP = "authorship"
    REVIEW = "review"
    APPROVAL = "approval"
    RESPONSIBILITY = "responsibility"


@dataclass(frozen=True)
class Actor:
    """The person acting, as authenticated (never as claimed in a request body)."""

    # Stored events name it by the module it was first stored from (shared.provenance).
    stored_as: ClassVar[str] = "shared.provenance.Actor"

    user_id: str
    printed_name: str
    role: str
    site: str


@dataclass(frozen=True)
class Provenance:
    """Who asked, and which request chain the change belongs to."""

    stored_as: ClassVar[str] = "shared.provenance.Provenance"  # as Actor.stored_as

    actor: Actor
    correlation_id: str
    causation_id: str | None = None
    client_id: str | None = None
    # the study the change belongs to (the caller's token's); None in events stored before
    # studies were named, and in changes of no study (the first administrator's account)
    study_id: str | None = None


@dataclass(frozen=True)
class Attribution:
    """Who made a change and when, by the server clock (Part 11's "attributable" and
    "contemporaneous"): what every command carries besides its own fields."""

    provenance: Provenance
    now: datetime  # server clock, aware UTC
