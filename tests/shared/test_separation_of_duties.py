"""Separation of duties as configuration (``shared.kernel.permissions.SeparationOfDuties``,
``TL_INCOMPATIBLE_ROLES``): the default keeps the administrator apart from every clinical
role, and the clinical roles are every role that may write clinical data."""

from __future__ import annotations

from itertools import combinations

import pytest

from shared.kernel.permissions import CLINICAL, TABLES, SeparationOfDuties
from shared.kernel.provenance import Role
from shared.kernel.settings import SettingsError, separation_of_duties

CLINICAL_SERVICES = ("enrollment", "infusion", "adverse_events", "assessments")
PAIRS = list(combinations(Role, 2))


@pytest.mark.part11("11.10(g)")
def test_every_role_that_may_write_clinical_data_is_clinical() -> None:
    writers = {
        role
        for service in CLINICAL_SERVICES
        for rule in TABLES[service].rules
        if "read" not in rule.command
        for role in rule.roles
    }
    assert writers == CLINICAL


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}+{b}" for a, b in PAIRS])
def test_the_default_forbids_exactly_the_administrator_with_a_clinical_role(
    a: Role, b: Role
) -> None:
    forbidden = Role.ADMINISTRATOR in (a, b) and bool({a, b} & CLINICAL)
    assert bool(SeparationOfDuties.default().conflicts({a, b})) is forbidden


def test_a_setting_names_roles_and_groups_and_none_forbids_nothing() -> None:
    duties = SeparationOfDuties.parse("monitor+clinical, auditor+administrator")
    assert duties.conflicts({Role.MONITOR, Role.STUDY_COORDINATOR}) == [
        (Role.STUDY_COORDINATOR, Role.MONITOR)
    ]
    assert duties.conflicts({Role.AUDITOR, Role.ADMINISTRATOR, Role.INVESTIGATOR}) == [
        (Role.AUDITOR, Role.ADMINISTRATOR)
    ]
    assert SeparationOfDuties.parse("none").conflicts(set(Role)) == []


def test_a_grant_is_judged_by_the_pairs_it_brings_not_by_those_held_before() -> None:
    duties = SeparationOfDuties.default()
    held = {Role.ADMINISTRATOR, Role.INVESTIGATOR}  # from before the rule
    assert duties.conflicts(held | {Role.AUDITOR}, {Role.AUDITOR}) == []
    assert duties.conflicts(held | {Role.STUDY_COORDINATOR}, {Role.STUDY_COORDINATOR}) == [
        (Role.STUDY_COORDINATOR, Role.ADMINISTRATOR)
    ]


@pytest.mark.parametrize(
    "value", ["administrator", "administrator+nurse", "monitor+monitor", "a+b+c"]
)
def test_a_malformed_setting_fails_at_start_naming_the_key(value: str) -> None:
    with pytest.raises(SettingsError, match="TL_INCOMPATIBLE_ROLES"):
        separation_of_duties({"TL_INCOMPATIBLE_ROLES": value})


def test_an_unset_setting_is_the_default() -> None:
    assert separation_of_duties({}) == SeparationOfDuties.default()
