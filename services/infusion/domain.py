"""A subject's treatment: leukapheresis, released product, lymphodepletion, infusion.

Decide, then record. Whether the subject is enrolled comes in as ``Enrollment`` (from the
local view of the enrollment topic); the clock as ``Command.now``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from services.infusion import errors
from services.infusion.rules import (
    InfusionRules,
    cells_per_kg_millions,
    for_display,
    within_tolerance,
)
from shared.clinical import CohortOpening
from shared.kernel.provenance import Attribution, Meaning, Provenance
from shared.kernel.records import SubjectRecord, named_in_its_study
from shared.study import StudyDefinition, acting_study

INFUSION_SIGNATURE = Meaning.RESPONSIBILITY  # who administered answers for the infusion
PRODUCTS = ("CD19", "BCMA", "CD19/BCMA")  # two products, or one bispecific


@dataclass(frozen=True)
class Enrollment:
    """What the local view knows of a subject's enrollment."""

    status: str  # registered ... enrolled, withdrawn, or "unknown"
    dose_level: int | None


@dataclass(frozen=True)
class Leukapheresis:
    performed_on: date
    volume_ml: Decimal


@dataclass(frozen=True)
class ProductRelease:
    lot_id: str
    product: str  # CD19, BCMA or CD19/BCMA
    car_positive_percent: Decimal
    viability_percent: Decimal
    sterility_passed: bool
    release_tests_passed: bool
    released_on: date


@dataclass(frozen=True)
class AgentDose:
    agent: str  # e.g. fludarabine, cyclophosphamide
    dose_mg_per_m2: Decimal
    days: int


@dataclass(frozen=True)
class Lymphodepletion:
    agents: tuple[AgentDose, ...]
    started_on: date
    completed_on: date


@dataclass(frozen=True)
class InfusedLot:
    lot_id: str
    viable_car_positive_cells: Decimal


@dataclass(frozen=True)
class Infusion:
    weight_kg: Decimal
    lots: tuple[InfusedLot, ...]
    started_at: datetime
    ended_at: datetime
    administered_by: str

    @property
    def total_cells(self) -> Decimal:
        return sum((lot.viable_car_positive_cells for lot in self.lots), Decimal(0))


def treatment_namespace(study: StudyDefinition) -> UUID:
    """The namespace of a study's treatment record ids (the first study's as ever)."""
    return uuid5(NAMESPACE_URL, study.urn("treatment"))


def treatment_id(subject_id: str, namespace: UUID) -> UUID:
    """A subject's treatment record id in a study's namespace (``treatment_namespace``):
    the same subject id in two studies names two records."""
    return uuid5(namespace, subject_id)


def check_enrolled(subject_id: str, enrollment: Enrollment) -> int:
    """The assigned dose level, if the view shows the subject enrolled."""
    if enrollment.status == "withdrawn":
        raise errors.SubjectWithdrawn(
            f"subject {subject_id} is withdrawn", subject_id=subject_id, status="withdrawn"
        )
    if enrollment.status != "enrolled" or enrollment.dose_level is None:
        # The view follows the enrollment topic: a subject it does not know yet, or knows
        # as eligible, may have been enrolled a moment ago. Any other status is a step away
        # from enrollment at least (never consented, screen failed, died): retrying is no use.
        retryable = enrollment.status in _MAYBE_ENROLLED_JUST_NOW
        advice = (
            "if enrollment was just recorded, retry in a moment"
            if retryable
            else "enroll the subject first"
        )
        raise errors.NotEnrolledYet(
            f"subject {subject_id} is {enrollment.status} in the enrollment view, not "
            f"enrolled; {advice}",
            subject_id=subject_id,
            status=enrollment.status,
            retryable=retryable,
        )
    return enrollment.dose_level


_MAYBE_ENROLLED_JUST_NOW = frozenset({"unknown", "eligible"})


class Treatment(SubjectRecord):
    """One subject's way to the CAR-T infusion; one infusion per subject."""

    create_id = staticmethod(named_in_its_study)

    @classmethod
    def begin(
        cls,
        subject_id: str,
        enrollment: Enrollment,
        apheresis: Leukapheresis,
        attribution: Attribution,
        namespace: UUID,
    ) -> Treatment:
        """Record leukapheresis for an enrolled subject: the treatment's first step, a
        record named in its study's ``namespace`` (``treatment_namespace``)."""
        check_enrolled(subject_id, enrollment)
        _positive("volume_ml", apheresis.volume_ml)
        _not_future("performed_on", apheresis.performed_on, attribution)
        return cls._create(
            cls.LeukapheresisPerformed,  # type: ignore[arg-type]  # (an @event class: it inits)
            id=treatment_id(subject_id, namespace),
            subject_id=subject_id,
            apheresis=apheresis,
            provenance=attribution.provenance,
        )

    @event("LeukapheresisPerformed")
    def __init__(self, subject_id: str, apheresis: Leukapheresis, provenance: Provenance) -> None:
        self.subject_id = subject_id
        # the study treated in (a record stored before studies were named: the first)
        self.study_id = acting_study(provenance)
        self.apheresis = apheresis
        self.released: dict[str, ProductRelease] = {}
        self.lymphodepletion: Lymphodepletion | None = None
        self.infusion: Infusion | None = None
        self.not_given_reason: str | None = None

    def release(
        self, enrollment: Enrollment, release: ProductRelease, attribution: Attribution
    ) -> None:
        """Release a lot made from this subject's cells, once its tests have passed."""
        check_enrolled(self.subject_id, enrollment)
        if release.product not in PRODUCTS:
            raise errors.InvalidMeasurement(
                f"product {release.product!r} is not one of {', '.join(PRODUCTS)}",
                field="product",
            )
        if not (release.sterility_passed and release.release_tests_passed):
            raise errors.ReleaseTestsFailed(
                f"lot {release.lot_id} cannot be released: sterility or a release test failed",
                lot_id=release.lot_id,
            )
        for name in ("car_positive_percent", "viability_percent"):
            _percent(name, getattr(release, name))
        if release.lot_id in self.released:
            raise errors.AlreadyDone(f"lot {release.lot_id} is already released")
        if release.released_on < self.apheresis.performed_on:
            raise errors.InvalidMeasurement("a lot is released after leukapheresis")
        _not_future("released_on", release.released_on, attribution)
        self._released(release, attribution.provenance)

    @event("ProductReleased")
    def _released(self, release: ProductRelease, provenance: Provenance) -> None:
        self.released = {**self.released, release.lot_id: release}

    def deplete(
        self, enrollment: Enrollment, regimen: Lymphodepletion, attribution: Attribution
    ) -> None:
        """Record lymphodepletion, once, after a product is released."""
        check_enrolled(self.subject_id, enrollment)
        if not self.released:
            raise errors.ProductNotReleased(
                f"subject {self.subject_id} has no released product yet"
            )
        if self.lymphodepletion is not None:
            raise errors.AlreadyDone(f"subject {self.subject_id} already had lymphodepletion")
        if not regimen.agents or regimen.completed_on < regimen.started_on:
            raise errors.InvalidMeasurement("lymphodepletion needs agents and ordered dates")
        for dose in regimen.agents:
            _positive(f"{dose.agent} dose_mg_per_m2", dose.dose_mg_per_m2)
        _not_future("completed_on", regimen.completed_on, attribution)
        self._depleted(regimen, attribution.provenance)

    @event("LymphodepletionAdministered")
    def _depleted(self, regimen: Lymphodepletion, provenance: Provenance) -> None:
        self.lymphodepletion = regimen

    def infuse(
        self,
        enrollment: Enrollment,
        infusion: Infusion,
        rules: InfusionRules,
        attribution: Attribution,
        cohort: CohortOpening,
        dosed_in_cohort: int,
    ) -> None:
        """Record the infusion: released lots, within the window, at the assigned dose, in
        the cohort the latest safety review opened and while it has room (3+3)."""
        if rules.study_id != self.study_id:  # a study's rules decide on its records alone
            raise ValueError(f"{rules.study_id}'s rules for a record of {self.study_id}")
        level = check_enrolled(self.subject_id, enrollment)
        if self.infusion is not None or self.not_given_reason is not None:
            raise errors.AlreadyDone(f"subject {self.subject_id} has had its one infusion")
        _check_cohort(self.subject_id, level, cohort, dosed_in_cohort)
        _check_after_review(infusion, cohort)
        regimen = self.lymphodepletion
        if regimen is None:
            raise errors.LymphodepletionRequired(
                f"subject {self.subject_id} has no lymphodepletion recorded"
            )
        self._check_lots(infusion)
        self._check_window(regimen, infusion, rules)
        self._check_times(infusion, attribution)
        dose = self._check_dose(infusion, level, rules)
        place = f"{cohort.review_number}/{dosed_in_cohort + 1}"
        self._infused(infusion, level, dose, rules.version, attribution.provenance, place)

    @event("CarTInfused")
    def _infused(
        self,
        infusion: Infusion,
        dose_level: int,
        cells_per_kg_millions: Decimal,
        rule_version: str,
        provenance: Provenance,
        cohort_place: str = "",  # "<review number>/<place>"; absent before 2026-12-03
    ) -> None:
        self.infusion = infusion

    def decline(self, reason: str, attribution: Attribution) -> None:
        """Record that the infusion was not given, with the reason."""
        if self.infusion is not None or self.not_given_reason is not None:
            raise errors.AlreadyDone(f"subject {self.subject_id} has had its one infusion")
        self._not_given(_reason(reason), attribution.provenance)

    @event("InfusionNotGiven")
    def _not_given(self, reason: str, provenance: Provenance) -> None:
        self.not_given_reason = reason

    def interrupt(self, reason: str, attribution: Attribution) -> None:
        """Record an interruption of the infusion, with the reason."""
        if self.infusion is None:
            raise errors.OutOfSequence(f"subject {self.subject_id} has no infusion to interrupt")
        self._interrupted(_reason(reason), attribution.provenance)

    @event("InfusionInterrupted")
    def _interrupted(self, reason: str, provenance: Provenance) -> None:
        pass

    def _check_lots(self, infusion: Infusion) -> None:
        if not infusion.lots:
            raise errors.InvalidMeasurement("an infusion names at least one lot")
        for lot in infusion.lots:
            if lot.lot_id not in self.released:
                raise errors.ProductNotReleased(
                    f"lot {lot.lot_id} was not released for subject {self.subject_id}",
                    lot_id=lot.lot_id,
                    released=sorted(self.released),
                )
            _positive(f"{lot.lot_id} viable_car_positive_cells", lot.viable_car_positive_cells)

    def _check_window(
        self, regimen: Lymphodepletion, infusion: Infusion, rules: InfusionRules
    ) -> None:
        days = (infusion.started_at.date() - regimen.completed_on).days
        if not rules.window_min_days <= days <= rules.window_max_days:
            raise errors.OutsideLymphodepletionWindow(
                f"the infusion is {days} days after lymphodepletion ended; the window is "
                f"{rules.window_min_days}-{rules.window_max_days} days",
                days=days,
                window=[rules.window_min_days, rules.window_max_days],
            )

    @staticmethod
    def _check_times(infusion: Infusion, attribution: Attribution) -> None:
        if infusion.ended_at < infusion.started_at or infusion.ended_at > attribution.now:
            raise errors.InvalidMeasurement(
                "the infusion ends after it starts and not later than the server clock"
            )

    @staticmethod
    def _check_dose(infusion: Infusion, level: int, rules: InfusionRules) -> Decimal:
        _positive("weight_kg", infusion.weight_kg)
        exact = cells_per_kg_millions(infusion.total_cells, infusion.weight_kg)
        dose = for_display(exact)
        if level not in rules.dose_levels:
            raise errors.InvalidMeasurement(
                f"dose level {level} is not one of the study's levels "
                f"{', '.join(str(n) for n in rules.dose_levels)}",
                field="dose_level",
                dose_level=level,
            )
        target = rules.level_dose(level)
        if not within_tolerance(exact, target, rules.dose_tolerance):
            raise errors.DoseOutOfTolerance(
                f"{infusion.total_cells} cells for {infusion.weight_kg} kg is {dose} x10^6/kg; "
                f"dose level {level} allows {target} x10^6/kg +/- {rules.dose_tolerance:%}",
                cells_per_kg_millions=str(dose),
                assigned_level=level,
                total_cells=str(infusion.total_cells),
                weight_kg=str(infusion.weight_kg),
                tolerance=str(rules.dose_tolerance),
            )
        return dose


def _check_cohort(subject_id: str, level: int, cohort: CohortOpening, dosed: int) -> None:
    if level != cohort.level:
        raise errors.CohortNotOpen(
            f"subject {subject_id} is assigned level {level}, but the open cohort is at level "
            f"{cohort.level}; a signed safety review must open level {level} first",
            dose_level=level,
            open_level=cohort.level,
        )
    if dosed >= cohort.size:
        raise errors.CohortFull(
            f"the cohort at level {level} has its {cohort.size} subjects; the next one waits for "
            "their DLT windows to close and a signed safety review",
            dose_level=level,
            cohort_size=cohort.size,
        )


def _check_after_review(infusion: Infusion, cohort: CohortOpening) -> None:
    """The 3+3 gate in clinical time: no dose before the review that opened its cohort
    (which took place only once every DLT window of the cohort before had closed)."""
    if infusion.started_at < cohort.reviewed_at:
        raise errors.CohortNotOpen(
            f"the infusion starts at {infusion.started_at.isoformat()}, before safety review "
            f"{cohort.review_number} opened level {cohort.level} at "
            f"{cohort.reviewed_at.isoformat()} (clinical time)",
            dose_level=cohort.level,
            open_level=cohort.level,
            reviewed_at=cohort.reviewed_at.isoformat(),
        )


def _positive(name: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise errors.InvalidMeasurement(f"{name} must be a positive number", field=name)


def _percent(name: str, value: Decimal) -> None:
    if not value.is_finite() or not 0 <= value <= 100:
        raise errors.InvalidMeasurement(f"{name} must be between 0 and 100", field=name)


def _not_future(name: str, day: date, attribution: Attribution) -> None:
    if day > attribution.now.date():
        raise errors.InvalidMeasurement(f"{name} {day} is later than today", field=name)


def _reason(reason: str) -> str:
    if not reason.strip():
        raise errors.ReasonRequired("a reason is needed")
    return reason.strip()
