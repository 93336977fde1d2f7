"""Every study-specific value the services use comes from the study's definition file:
the registry below names each one with where it must come from, and a scan of the source
finds any protocol id, or constant of the registry, written into the code instead.

A new study-specific constant belongs in ``studies/<study>/definition.json`` (and, read
from it, in this registry); docs/studies.md."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from services.adverse_events import dlt, escalation, windows
from services.adverse_events import domain as ae_domain
from services.assessments import domain as assessments_domain
from services.enrollment import domain as enrollment_domain
from services.enrollment import rules as eligibility
from services.infusion import domain as infusion_domain
from services.infusion import rules as infusion_rules
from services.projections import clinical_endpoints
from shared import clinical
from shared.study import study_definition
from shared.study.model import DltCriterionCode

ROOT = Path(__file__).resolve().parents[2]
STUDY = study_definition()
CALENDAR = clinical.Study.of(STUDY)
STUDY_IDS = sorted(p.parent.name for p in (ROOT / "studies").glob("*/definition.json"))

# Modules whose protocol ids other changes move into the definition; each names why it is
# allowed for now. Nothing else under services/ or shared/ may write a study id.
NOT_YET_FROM_THE_DEFINITION: dict[str, str] = {}
# Rule versions whose tables are not in the definition yet (standards, not the study's):
# they keep their names; laboratory's is stamped at publication, so it must never change
# for events already stored (a new name needs it stored with each event first).
OLD_STYLE_RULE_VERSIONS = {
    "services.adverse_events.grading": "NCT05030779-grading/3",
    "services.assessments.rules": "NCT05030779-sle-response/1",
    "services.assessments.laboratory": "NCT05030779-laboratory/1",
}


def _visits() -> dict[str, clinical_endpoints.NamedVisit]:
    return {
        v.name: clinical_endpoints.NamedVisit(
            timedelta(days=v.days_after_infusion), v.window_days_before, v.window_days_after
        )
        for v in STUDY.visits
    }


# (module, name, the value the definition gives it)
REGISTRY: list[tuple[Any, str, Callable[[], object]]] = [
    (eligibility, "CRITERIA", lambda: eligibility.criteria_of(STUDY)),
    (eligibility, "RULE_VERSION", lambda: STUDY.rule_version("eligibility", 2)),
    (infusion_rules, "RULE_VERSION", lambda: STUDY.rule_version("infusion", 2)),
    (windows, "RULE_VERSION", lambda: STUDY.rule_version("windows", 2)),
    (dlt, "RULE_VERSION", lambda: STUDY.rule_version("dlt", 3)),
    (escalation, "RULE_VERSION", lambda: STUDY.rule_version("escalation", 2)),
    (escalation, "DOSE_LEVELS", lambda: STUDY.dose_levels),
    (escalation, "COHORT", lambda: STUDY.escalation.cohort_size),
    (escalation, "EXPANDED_COHORT", lambda: STUDY.escalation.expanded_cohort_size),
    (escalation, "DLTS_EXCEEDING", lambda: STUDY.escalation.dlts_exceeding),
    (escalation, "EXPANSION_TOTAL_AT_LEVEL", lambda: STUDY.escalation.expansion_total_at_level),
    (ae_domain, "NEW_COHORT", lambda: STUDY.escalation.cohort_size),
    (dlt, "ADOPTED", lambda: frozenset(dlt.DltCriterion(c) for c in STUDY.dlt.criteria)),
    (dlt, "IMPROVEMENT_HOURS", lambda: STUDY.dlt.crs_improvement_hours),
    (clinical, "STUDY", lambda: clinical.Study.of(STUDY)),
    (clinical_endpoints, "ENDPOINTS_VERSION", lambda: STUDY.rule_version("endpoints", 2)),
    (clinical_endpoints, "VISITS", _visits),
]


@pytest.mark.parametrize(
    ("module", "name", "expected"), REGISTRY, ids=[f"{m.__name__}.{n}" for m, n, _ in REGISTRY]
)
def test_each_study_constant_is_the_definition_s(
    module: Any, name: str, expected: Callable[[], object]
) -> None:
    assert getattr(module, name) == expected()
    assignment = _assignment(Path(module.__file__), name)
    assert not _literal(assignment), (
        f"{module.__name__}.{name} is written as a literal: read it from the definition"
    )


def test_the_infusion_rules_default_to_the_definition_s_dosing() -> None:
    rules = infusion_rules.InfusionRules()
    window = STUDY.dosing.lymphodepletion_to_infusion_days
    assert (rules.dose_tolerance, rules.window_min_days, rules.window_max_days) == (
        Decimal(STUDY.dosing.tolerance),
        window.min,
        window.max,
    )
    assert [infusion_rules.level_dose(n, rules) for n in STUDY.dose_levels] == [
        Decimal(d.cells_per_kg_millions) for d in STUDY.dosing.levels
    ]


def test_the_definition_names_exactly_the_dlt_criteria_the_services_check() -> None:
    assert set(get_args(DltCriterionCode)) == {c.value for c in dlt.DltCriterion}


def test_a_dlt_criterion_the_study_does_not_adopt_is_never_borne_out() -> None:
    now = datetime(2026, 3, 20, tzinfo=UTC)
    course = dlt.Course(now - timedelta(days=2), 8, None, now)
    rules = dlt.DltRules.of(STUDY)
    args = (dlt.DltCriterion.CRS_GRADE_4, "ASTCT-CRS", "CRS", 4, True, course, CALENDAR)
    assert dlt.supports(*args, rules)
    not_adopted = replace(rules, adopted=rules.adopted - {dlt.DltCriterion.CRS_GRADE_4})
    assert not dlt.supports(*args, not_adopted)


def test_the_first_cohort_is_the_first_level_and_one_cohort_of_the_design() -> None:
    assert (clinical.FIRST_COHORT.level, clinical.FIRST_COHORT.size) == (
        STUDY.dose_levels[0],
        STUDY.escalation.cohort_size,
    )


@pytest.mark.parametrize(
    ("record_id", "name"),
    [
        (lambda key: enrollment_domain.subject_record_id(key, STUDY), "subject"),
        (lambda key: infusion_domain.treatment_id(key, infusion_domain.treatment_namespace(STUDY)),
         "treatment"),
        (lambda key: assessments_domain.assessments_record_id(
            key, assessments_domain.StudyRules.of(STUDY).records), "assessments"),
        (lambda key: ae_domain.safety_review_id(int(key), ae_domain.StudyRules.of(STUDY).reviews),
         "safety-review"),
    ],
)  # fmt: skip
def test_record_ids_are_derived_as_they_always_were(
    record_id: Callable[[str], UUID], name: str
) -> None:
    # The namespaces now name the study from its definition; for NCT05030779 they must be
    # the very UUIDs its stored records were named with.
    namespace = uuid5(NAMESPACE_URL, f"urn:trial-ledger:NCT05030779:{name}")
    assert record_id("1") == uuid5(namespace, "1")


@pytest.mark.parametrize(
    "record",
    [enrollment_domain.Subject, infusion_domain.Treatment, assessments_domain.SubjectAssessments,
     ae_domain.SafetyReview],
)  # fmt: skip
def test_a_record_named_in_its_study_has_no_default_id(record: Any) -> None:
    # created without the id its study's namespace gives, it is refused, not named in the
    # first study's namespace
    with pytest.raises(TypeError, match="study's namespace"):
        record.create_id(subject_id="S-001", review_number=1)


@pytest.mark.parametrize(("module", "version"), OLD_STYLE_RULE_VERSIONS.items())
def test_rule_versions_outside_the_definition_keep_their_names(module: str, version: str) -> None:
    imported = importlib.import_module(module)
    assert getattr(imported, "RULE_VERSION") == version  # noqa: B009


def test_no_service_module_writes_a_study_id() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in _sources()
        for line, text in _strings(path)
        if any(study in text for study in STUDY_IDS)
        and text not in OLD_STYLE_RULE_VERSIONS.values()
    ]
    assert not found, "read the study from shared.study instead:\n" + "\n".join(found)


def test_the_scan_finds_a_study_id_written_into_code(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""Docstring: NCT05030779 may be named here."""\n'
        "# and in a comment: NCT05030779\n"
        'RULE_VERSION = "NCT05030779-infusion/3"\n'
        'DESCRIPTION = f"of NCT05030779 {1}"\n'
    )
    assert [line for line, _ in _strings(planted)] == [3, 4]
    assert _literal(_assignment(planted, "RULE_VERSION"))


def _sources() -> Iterator[Path]:
    for folder in ("services", "shared"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative.startswith("shared/study/") or relative in NOT_YET_FROM_THE_DEFINITION:
                continue
            yield path


def _strings(path: Path) -> Iterator[tuple[int, str]]:
    """The string constants of the code (docstrings left out; comments are not code)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def _assignment(path: Path, name: str) -> ast.expr:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.value
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and node.value is not None
        ):
            return node.value
    raise AssertionError(f"{path}: no module-level assignment of {name}")


def _literal(expression: ast.expr) -> bool:
    """Whether an expression is made of constants alone (a table or value written out)."""
    try:
        ast.literal_eval(expression)
    except ValueError:
        return isinstance(expression, ast.JoinedStr) and all(
            isinstance(v, ast.Constant)
            or (isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Constant))
            for v in expression.values
        )
    return True
