"""The subject's assessment record: study days, baseline, the remission's inputs, and
what is refused (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.assessments import errors
from services.assessments import laboratory as lab
from services.assessments.domain import Progression, StudyRules, SubjectAssessments, VitalStatus
from services.assessments.publication import to_contract
from services.assessments.rules import Activity, Response, SledaiItem
from shared.clinical import Infused
from shared.kernel.publication import event_id
from shared.study import study_definition
from tests.support import NOW, command

RULES = StudyRules.of(study_definition())  # the first study's
INFUSED_AT = NOW - timedelta(days=100)
ALIVE = VitalStatus()
I = SledaiItem  # noqa: E741


def activity(*items: SledaiItem, pga: str = "0", bilag: tuple[int, int] | None = None) -> Activity:
    a, b = bilag or (None, None)
    return Activity(frozenset(items), Decimal(pga), Decimal("5"), True, a, b)


def record() -> SubjectAssessments:
    return SubjectAssessments.start("S-001", Infused(INFUSED_AT, 2), command(), RULES)


def with_visits(*visits: tuple[int, Activity]) -> tuple[SubjectAssessments, list[str]]:
    """A record with visits at the given study-day offsets from the infusion."""
    r, ids = record(), []
    for offset, a in visits:
        r.assess_activity(
            f"day {offset}", a, INFUSED_AT + timedelta(days=offset), ALIVE, command(), RULES
        )
        ids.append(str(event_id(r.id, r.version)))
    return r, ids


def last_published(r: SubjectAssessments) -> dict[str, Any]:
    return to_contract(r.pending_events[-1]).model_dump(mode="json")


def test_a_visit_is_on_the_study_calendar_with_its_scores() -> None:
    r, _ = with_visits((-3, activity(I.ARTHRITIS, I.LOW_COMPLEMENT, pga="1.5")))
    published = last_published(r)
    assert published["study_day"] == -3
    assert (published["sledai_2k"], published["clinical_sledai"]) == (6, 4)
    assert published["items"]["arthritis"] is True and published["items"]["fever"] is False
    assert len(published["items"]) == 24


def test_the_record_counts_the_infusion_s_date_as_day_0_and_publishes_cdisc_days() -> None:
    """The study's convention inside the record; the v1 contracts keep "day 1 = infusion
    day" (a day 0 is published as 1, a negative day as itself)."""
    r, _ = with_visits((0, activity()), (-1, activity()))
    assert [v.study_day for v in r.visits.values()] == [0, -1]
    events: list[Any] = list(r.pending_events)
    assert events[1].study_day_convention == "infusion_day_0"
    assert to_contract(events[1]).model_dump(mode="json")["study_day"] == 1
    assert to_contract(events[2]).model_dump(mode="json")["study_day"] == -1


def test_a_visit_stored_before_conventions_is_held_in_the_study_s_days() -> None:
    r = record()
    r.assess_activity(
        "month 1", activity(), INFUSED_AT + timedelta(days=30), ALIVE, command(), RULES
    )
    stored: Any = r.pending_events[-1]
    cdisc_visit = replace(stored.visit, study_day=31)  # as windows before conventions counted
    replayed = record()
    replayed._activity_assessed(cdisc_visit, stored.provenance)  # no convention named
    assert next(iter(replayed.visits.values())).study_day == 30
    assert to_contract(replayed.pending_events[-1]).model_dump(mode="json")["study_day"] == 31


def test_a_response_is_assessed_at_a_visit_on_the_infusion_day_after_the_infusion() -> None:
    r, (_, day_0) = with_visits((-3, activity(I.ARTHRITIS)), (0, activity()))
    r.assess_remission(day_0, Response.COMPLETE, ALIVE, command(), RULES)
    assert last_published(r)["study_day"] == 1  # day 0 of the study, CDISC day 1


def test_remission_names_the_visits_it_was_derived_from() -> None:
    r, (baseline, month1, month3) = with_visits(
        (-3, activity(I.ARTHRITIS, I.RASH, pga="1.5")),
        (30, activity(I.RASH, pga="0.8")),
        (90, activity(I.LOW_COMPLEMENT)),
    )
    r.assess_remission(month3, Response.COMPLETE, ALIVE, command(), RULES)
    published = last_published(r)
    assert published["response"] == "complete" and published["remission"] is True
    assert (published["visit_event_id"], published["previous_event_id"]) == (month3, month1)
    assert published["baseline_event_id"] == baseline
    assert (published["doris"], published["study_day"]) == (True, 91)


def test_the_baseline_is_the_last_visit_before_the_infusion_whatever_the_entry_order() -> None:
    r, (month1, late_baseline, _early) = with_visits(
        (30, activity(I.ARTHRITIS)), (-1, activity(I.ARTHRITIS, I.RASH)), (-20, activity())
    )
    r.assess_remission(month1, Response.PARTIAL, ALIVE, command(), RULES)
    assert last_published(r)["baseline_event_id"] == late_baseline
    assert last_published(r)["previous_event_id"] == late_baseline


def test_a_claim_the_rules_do_not_derive_is_refused_with_the_derivation() -> None:
    r, (_, month3) = with_visits((-3, activity(I.ARTHRITIS)), (90, activity(I.ARTHRITIS)))
    with pytest.raises(errors.RemissionNotSupported) as refused:
        r.assess_remission(month3, Response.COMPLETE, ALIVE, command(), RULES)
    assert refused.value.details["derived"] == "partial"  # LLDAS: arthritis alone
    assert not r.pending_events[-1].__class__.__name__.startswith("Remission")


def test_a_remission_without_a_baseline_is_refused() -> None:
    r, (month3,) = with_visits((90, activity()))
    with pytest.raises(errors.InputsMissing):
        r.assess_remission(month3, Response.COMPLETE, ALIVE, command(), RULES)


def test_a_remission_at_a_visit_before_the_infusion_or_twice_is_refused() -> None:
    r, (baseline, month3) = with_visits((-3, activity(I.RASH)), (90, activity()))
    with pytest.raises(errors.InputsMissing):
        r.assess_remission(baseline, Response.STABLE, ALIVE, command(), RULES)
    r.assess_remission(month3, Response.COMPLETE, ALIVE, command(), RULES)
    with pytest.raises(errors.AlreadyAssessed):
        r.assess_remission(month3, Response.COMPLETE, ALIVE, command(), RULES)
    with pytest.raises(errors.VisitNotFound):
        r.assess_remission("no-such-visit", Response.COMPLETE, ALIVE, command(), RULES)


def test_nothing_is_assessed_after_death_or_withdrawal_or_in_the_future() -> None:
    r = record()
    died = VitalStatus(died_at=NOW - timedelta(days=10))
    with pytest.raises(errors.SubjectInactive):
        r.assess_activity("day 95", activity(), NOW - timedelta(days=5), died, command(), RULES)
    r.assess_activity("day 85", activity(), NOW - timedelta(days=15), died, command(), RULES)
    withdrawn = VitalStatus(withdrawn_at=NOW - timedelta(days=50))
    with pytest.raises(errors.SubjectInactive):
        r.report_progression(
            Progression.FLARE, "rash", NOW - timedelta(days=1), withdrawn, command(), RULES
        )
    with pytest.raises(errors.InvalidTime):
        r.assess_activity("tomorrow", activity(), NOW + timedelta(hours=1), ALIVE, command(), RULES)


def test_kinetics_is_after_the_infusion_with_its_unit_and_lloq() -> None:
    sample = lab.kinetics_sample(
        lab.Sample.BONE_MARROW,
        lab.Method.QPCR,
        lab.Target.CD19,
        Decimal("20"),
        "copies/µg gDNA",
        Decimal("50"),
    )
    r = record()
    with pytest.raises(errors.InvalidAssessment):
        r.measure_kinetics(sample, INFUSED_AT - timedelta(hours=1), ALIVE, command(), RULES)
    r.measure_kinetics(sample, INFUSED_AT + timedelta(days=13), ALIVE, command(), RULES)
    published = last_published(r)
    assert (published["unit"], published["below_lloq"], published["study_day"]) == (
        "copies/ug gDNA",
        True,
        14,
    )


@pytest.mark.parametrize(
    ("method", "unit"),
    [(lab.Method.QPCR, "cells/uL"), (lab.Method.FLOW_CYTOMETRY, "copies/ug gDNA")],
)
def test_kinetics_unit_must_fit_the_method(method: lab.Method, unit: str) -> None:
    with pytest.raises(lab.InvalidMeasurement):
        lab.kinetics_sample(
            lab.Sample.PERIPHERAL_BLOOD, method, lab.Target.TOTAL, Decimal(1), unit, Decimal(1)
        )


def test_complement_in_mg_per_dl_is_normalised_and_flagged() -> None:
    normal = lab.ReferenceRange(Decimal(90), Decimal(180))
    c3 = lab.autoantibody_result(lab.Analyte.C3, Decimal("62"), "mg/dL", normal)
    assert (c3.canonical_value, c3.canonical_unit, c3.flag) == (Decimal("0.62"), "g/L", "low")
    with pytest.raises(lab.InvalidMeasurement):
        lab.autoantibody_result(
            lab.Analyte.ANTI_DSDNA, Decimal(10), "g/L", lab.ReferenceRange(None, Decimal(30))
        )
    with pytest.raises(lab.InvalidMeasurement):
        lab.ReferenceRange(Decimal(5), Decimal(5))


def test_an_autoantibody_panel_has_one_result_per_analyte() -> None:
    dsdna = lab.autoantibody_result(
        lab.Analyte.ANTI_DSDNA, Decimal(200), "IU/mL", lab.ReferenceRange(None, Decimal(100))
    )
    r = record()
    with pytest.raises(errors.InvalidAssessment):
        r.measure_autoantibodies((dsdna, dsdna), NOW, ALIVE, command(), RULES)
    r.measure_autoantibodies((dsdna,), NOW, ALIVE, command(), RULES)
    assert last_published(r)["results"][0]["flag"] == "high"
