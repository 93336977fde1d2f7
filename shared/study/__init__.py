"""Studies as data: a study's definition (protocol id, eligibility criteria, dose levels,
escalation design, calendar and windows, endpoints) read from a versioned, schema-checked
file (docs/studies.md).

- ``study_definition(study_id)``: the packaged ``studies/<study_id>/definition.json``,
  checked, read once; ``DEFAULT_STUDY_ID`` is the deployment's first study, and
  ``served_studies()`` the studies it serves (``TL_STUDIES``).
- ``acting_study(provenance)``: the study a change belongs to (none named: the first).
- ``load_definition(path)`` / ``parse_definition(text)``: any file or text, checked.
- ``StudyDefinition.rule_version(rules, revision)``: the version a derived result records,
  ``<study>/def-<n>/<rules>/<revision>``.
- ``python -m shared.study [--check]``: write or check the committed JSON Schema.
"""

from shared.study.loader import (
    DEFAULT_STUDY_ID,
    STUDIES_SETTING,
    StudyDefinitionError,
    acting_study,
    load_definition,
    parse_definition,
    record_key,
    schema,
    schema_text,
    served_studies,
    study_definition,
)
from shared.study.model import (
    Calendar,
    CategoryCriterion,
    Criterion,
    DoseLevel,
    Dosing,
    Eligibility,
    Endpoint,
    Escalation,
    FlagCriterion,
    QuantityCriterion,
    RatioToUlnCriterion,
    Registration,
    StudyDefinition,
    UnitDefinition,
    WashoutCriterion,
    decimal,
    unit_key,
)

__all__ = [
    "DEFAULT_STUDY_ID",
    "STUDIES_SETTING",
    "Calendar",
    "CategoryCriterion",
    "Criterion",
    "DoseLevel",
    "Dosing",
    "Eligibility",
    "Endpoint",
    "Escalation",
    "FlagCriterion",
    "QuantityCriterion",
    "RatioToUlnCriterion",
    "Registration",
    "StudyDefinition",
    "StudyDefinitionError",
    "UnitDefinition",
    "WashoutCriterion",
    "acting_study",
    "decimal",
    "load_definition",
    "parse_definition",
    "record_key",
    "schema",
    "schema_text",
    "served_studies",
    "study_definition",
    "unit_key",
]
