"""Study definitions: the packaged NCT05030779 file is read and checked, the committed
JSON Schema is the model's, and a definition that is wrong is refused when it is read,
naming the field."""

from __future__ import annotations

import copy
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.study import (
    DEFAULT_STUDY_ID,
    StudyDefinition,
    StudyDefinitionError,
    load_definition,
    parse_definition,
    schema,
    study_definition,
)
from shared.study.__main__ import main as study_main

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "studies" / "NCT05030779" / "definition.json"
SCHEMA = ROOT / "studies" / "study-definition.schema.json"


def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FILE.read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def criterion(document: dict[str, Any], code: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        c for c in document["eligibility"]["criteria"] if c["code"] == code
    )
    return found


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(StudyDefinitionError) as refusal:
        parse_definition(json.dumps(document), "test.json")
    return str(refusal.value)


def test_the_services_run_nct05030779_from_its_packaged_file() -> None:
    definition = study_definition()
    assert DEFAULT_STUDY_ID == definition.study_id == "NCT05030779"
    assert definition.definition_version == 1
    assert definition == load_definition(FILE)


def test_a_rule_version_names_the_study_and_the_definition_version() -> None:
    assert study_definition().rule_version("eligibility", 2) == "NCT05030779/def-1/eligibility/2"


def test_dose_levels_are_read_as_exact_decimals() -> None:
    definition = study_definition()
    assert definition.dose_levels == (1, 2, 3, 4)
    assert definition.dose(3) == Decimal(3)
    assert definition.dosing.tolerance == "0.10"
    with pytest.raises(KeyError):
        definition.dose(5)


def test_the_committed_schema_is_the_model_s() -> None:
    assert study_main(["--check", "--root", str(ROOT)]) == 0


def test_the_schema_check_reports_drift(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "study-definition.schema.json").write_text("{}\n")
    assert study_main(["--check", "--root", str(tmp_path)]) == 1


def test_the_committed_file_meets_the_committed_schema() -> None:
    committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(schema()))
    jsonschema.Draft202012Validator(committed).validate(raw())


def test_an_unknown_study_is_refused() -> None:
    with pytest.raises(StudyDefinitionError, match="no definition of study 'NCT00000000'"):
        study_definition("NCT00000000")


def test_a_threshold_written_as_a_json_number_is_refused() -> None:
    text = FILE.read_text(encoding="utf-8").replace('"threshold": "2.5"', '"threshold": 2.5')
    assert '"threshold": 2.5' in text
    with pytest.raises(StudyDefinitionError, match=r"2\.5 is a JSON float"):
        parse_definition(text, "test.json")


def test_a_threshold_that_is_not_a_decimal_is_refused() -> None:
    document = raw()
    criterion(document, "creatinine")["threshold"] = "2,5"
    message = refused(document)
    assert "eligibility.criteria.14.quantity.threshold" in message
    assert "should match pattern" in message


def test_an_integer_threshold_where_a_decimal_string_is_due_is_refused() -> None:
    document = raw()
    criterion(document, "platelets")["threshold"] = 30
    assert "eligibility.criteria.5.quantity.threshold: Input should be a valid string" in refused(
        document
    )


def test_a_canonical_unit_that_is_not_accepted_is_refused() -> None:
    document = raw()
    criterion(document, "creatinine")["unit"] = "mmol/L"
    assert "unit 'mmol/L' is not among its accepted units" in refused(document)


def test_a_unit_with_a_zero_divisor_is_refused() -> None:
    document = raw()
    criterion(document, "bilirubin")["units"][1]["divisor"] = "0"
    assert "unit 'umol/L': factor and divisor must be above 0" in refused(document)


def test_a_unit_accepted_twice_is_refused() -> None:
    document = raw()
    criterion(document, "platelets")["units"].append({"label": "10^9/l"})
    assert "criterion 'platelets': a unit is accepted twice" in refused(document)


def test_an_unknown_kind_or_requirement_is_refused() -> None:
    document = raw()
    criterion(document, "platelets")["kind"] = "percentage"
    assert "does not match any of the expected tags" in refused(document)
    document = raw()
    criterion(document, "platelets")["requirement"] = "<"
    assert "eligibility.criteria.5.quantity.requirement" in refused(document)


def test_an_exclusion_flag_that_must_be_present_is_refused() -> None:
    document = raw()
    criterion(document, "hiv_infection")["threshold"] = True
    assert "an exclusion flag is met when absent" in refused(document)


def test_a_category_threshold_outside_the_categories_is_refused() -> None:
    document = raw()
    criterion(document, "pregnancy_test")["threshold"] = ["negative", "unknown"]
    assert "threshold names unknown ['unknown']" in refused(document)


def test_a_criterion_named_twice_is_refused() -> None:
    document = raw()
    document["eligibility"]["criteria"].append(criterion(document, "alt"))
    assert "criteria named twice (code): ['alt']" in refused(document)


def test_a_test_code_named_twice_or_too_long_for_sdtm_is_refused() -> None:
    document = raw()
    criterion(document, "alt")["test_code"] = criterion(document, "ast")["test_code"]
    assert "criteria named twice (test_code)" in refused(document)
    criterion(document, "alt")["test_code"] = "EXCLUDE10"  # IETESTCD: 8 characters at most
    assert "test_code" in refused(document)


def test_an_unknown_field_is_refused() -> None:
    document = raw()
    criterion(document, "alt")["limit"] = "3"
    assert "limit: Extra inputs are not permitted" in refused(document)


def test_dose_levels_that_do_not_ascend_are_refused() -> None:
    document = raw()
    document["dosing"]["levels"][1]["cells_per_kg_millions"] = "1"
    assert "must ascend" in refused(document)


def test_a_window_before_the_infusion_day_is_refused() -> None:
    document = raw()
    document["calendar"]["day_convention"] = "infusion_day_1"
    document["calendar"]["dlt_last_day"] = 0
    assert "calendar.dlt_last_day is before the infusion's day" in refused(document)


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "definition.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(StudyDefinitionError, match="not JSON"):
        load_definition(broken)
    with pytest.raises(StudyDefinitionError, match="cannot be read"):
        load_definition(tmp_path / "missing.json")


def test_the_definition_is_frozen() -> None:
    definition = study_definition()
    with pytest.raises(ValueError, match="frozen"):
        definition.definition_version = 2  # type: ignore[misc]


# The digest of each released definition: a change to a definition's content is a new
# definition_version (the rule versions recorded with results name it), never an edit.
DEFINITION_DIGESTS = {
    ("NCT05030779", 1): "0c569b8abeef2f2fb852a6ad227c004528ebc89306d0f35f1f2d9c3d2a4e17bd",
    # synthetic, for the tests of several studies (docs/studies.md)
    ("SYN-CART-2", 1): "3f3f7ca284828cb38921fa4316e422c7a7f49c0fd4b345ca26e53f66978bbb12",
}


def definition_digest(definition: StudyDefinition) -> str:
    content = definition.model_dump(mode="json", exclude={"schema_ref"})
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("file", sorted((ROOT / "studies").glob("*/definition.json")))
def test_a_definition_is_the_one_its_version_names(file: Path) -> None:
    definition = load_definition(file)
    key = (definition.study_id, definition.definition_version)
    digest = definition_digest(definition)
    assert DEFINITION_DIGESTS.get(key) == digest, (
        f"{file} changed under definition_version {definition.definition_version}: give it a "
        f"new definition_version and record its digest {digest} in DEFINITION_DIGESTS"
    )
