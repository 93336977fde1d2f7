"""Published events of the enrollment service (topic ``trialledger.enrollment.events``)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field, JsonValue

from shared.kernel.envelope import Contract, EventData, ReasonGiven, contract_registry

RECORD_TYPE = "Subject"


ObservationKind = Literal["quantity", "ratio_to_uln", "flag", "category", "last_dose_date"]
# Numbers travel as decimal strings and dates as ISO strings, so nothing is rounded by a
# float on the way; ``kind`` says how to read ``value``.
ObservedValue = str | bool | None


class ObservationV1(Contract):
    """A screening observation as entered."""

    criterion: str
    kind: ObservationKind
    value: ObservedValue
    unit: str | None = None
    upper_limit_normal: Decimal | None = None
    observed_on: date


class CriterionResultV1(Contract):
    """One eligibility criterion evaluated under the rule version of the decision."""

    criterion: str
    kind: ObservationKind
    met: bool
    value: ObservedValue = Field(description="normalised to the criterion's unit")
    unit: str | None
    requirement: str


class SubjectRegisteredV1(EventData):
    event_type = "SubjectRegistered.v1"
    site_id: str


class ConsentSignedV1(EventData):
    event_type = "ConsentSigned.v1"
    form_version: str
    signed_on: date
    obtained_by: str


class ScreeningResultRecordedV1(EventData):
    event_type = "ScreeningResultRecorded.v1"
    screened_on: date
    observations: list[ObservationV1]


class EligibilityConfirmedV1(EventData):
    event_type = "EligibilityConfirmed.v1"
    rule_version: str
    criteria: list[CriterionResultV1]


class ScreenFailedV1(EventData):
    event_type = "ScreenFailed.v1"
    rule_version: str
    failed_criteria: list[str] = Field(min_length=1)
    criteria: list[CriterionResultV1]


class SubjectEnrolledV1(EventData):
    event_type = "SubjectEnrolled.v1"
    dose_level: Literal[1, 2, 3, 4]
    dose_cells_per_kg: Decimal = Field(description="CAR-T cells per kg of body weight")


class SubjectWithdrawnV1(ReasonGiven):
    event_type = "SubjectWithdrawn.v1"


class SubjectDiedV1(EventData):
    """The subject's death; ``occurred_at`` is its time. The enrollment service owns it."""

    event_type = "SubjectDied.v1"
    cause: str = Field(min_length=1)
    adverse_event_id: str | None = Field(description="the adverse-event record it followed, if any")


class ValueCorrectedV1(ReasonGiven):
    """A recorded value replaced by a new one; both are kept, with the reason."""

    event_type = "ValueCorrected.v1"
    field: str
    old_value: JsonValue
    new_value: JsonValue


ENROLLMENT_CONTRACTS = contract_registry(
    SubjectRegisteredV1,
    ConsentSignedV1,
    ScreeningResultRecordedV1,
    EligibilityConfirmedV1,
    ScreenFailedV1,
    SubjectEnrolledV1,
    SubjectWithdrawnV1,
    SubjectDiedV1,
    ValueCorrectedV1,
)

# The status each enrollment event leaves its subject in (what a consumer's view of a
# subject's path shows; ValueCorrected leaves it as it was).
SUBJECT_STATUS = {
    SubjectRegisteredV1.event_type: "registered",
    ConsentSignedV1.event_type: "consented",
    ScreeningResultRecordedV1.event_type: "screened",
    EligibilityConfirmedV1.event_type: "eligible",
    ScreenFailedV1.event_type: "screen_failed",
    SubjectEnrolledV1.event_type: "enrolled",
    SubjectWithdrawnV1.event_type: "withdrawn",
    SubjectDiedV1.event_type: "died",
}
