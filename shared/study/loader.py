"""Reading study definitions: the packaged files under ``studies/`` (or any path), checked
against ``shared.study.model`` when they are read.

A definition that does not match the schema is refused at once with
``StudyDefinitionError``, naming the file and every field at fault: a service that
cannot read its study does not start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from shared.kernel.envelope import study_key
from shared.kernel.provenance import Provenance
from shared.study.model import SCHEMA_VERSION, StudyDefinition

# The deployment's first study: what a route without ``/studies/<id>`` and a token that
# names no study are for, and the study of records stored before studies were named.
DEFAULT_STUDY_ID = "NCT05030779"
STUDIES_SETTING = "TL_STUDIES"
STUDIES_DIR_SETTING = "TL_STUDIES_DIR"  # an operator's folder of further definitions
_STUDY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as CloudEvent.studyid
DEFINITION_FILE = "definition.json"
SCHEMA_FILE = "study-definition.schema.json"


class StudyDefinitionError(ValueError):
    """A study definition file that is missing, not JSON, or not what the schema allows."""


def parse_definition(text: str | bytes, origin: str = "<definition>") -> StudyDefinition:
    """A definition from its JSON text, checked; StudyDefinitionError names what is wrong."""
    try:
        raw = json.loads(text, parse_float=_no_float)
    except _FloatInDefinition as error:
        raise StudyDefinitionError(
            f'{origin}: {error}: write decimals as strings ("2.5"), never as JSON numbers'
        ) from None
    except json.JSONDecodeError as error:
        raise StudyDefinitionError(f"{origin}: not JSON: {error}") from None
    try:
        return StudyDefinition.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in error.errors()
        )
        raise StudyDefinitionError(f"{origin}: {problems}") from None


def load_definition(path: Path) -> StudyDefinition:
    """The definition in the file at ``path``."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise StudyDefinitionError(f"{path}: cannot be read: {error.strerror}") from None
    return parse_definition(text, str(path))


@cache
def study_definition(study_id: str = DEFAULT_STUDY_ID) -> StudyDefinition:
    """The definition of ``study_id``, read once per process: the packaged
    ``studies/<study_id>/definition.json``, else ``<dir>/<study_id>/definition.json`` in the
    operator's directory ``TL_STUDIES_DIR`` (a study added without a new image). A study
    packaged is never taken from that directory: the packaged file is the released one."""
    if not _STUDY_ID.match(study_id):  # never a path outside the folders of definitions
        raise StudyDefinitionError(f"{study_id!r} is not a study id")
    packaged = resources.files("studies").joinpath(study_id).joinpath(DEFINITION_FILE)
    if packaged.is_file():
        name, text = f"studies/{study_id}/{DEFINITION_FILE}", packaged.read_bytes()
    else:
        folder = os.environ.get(STUDIES_DIR_SETTING)
        if not folder or not (Path(folder) / study_id / DEFINITION_FILE).is_file():
            where = f"studies/ or {STUDIES_DIR_SETTING}={folder}" if folder else "studies/"
            raise StudyDefinitionError(f"no definition of study {study_id!r} in {where}")
        path = Path(folder) / study_id / DEFINITION_FILE
        name, text = str(path), path.read_bytes()
    definition = parse_definition(text, name)
    if definition.study_id != study_id:
        raise StudyDefinitionError(f"{name} defines study {definition.study_id!r}")
    return definition


def served_studies(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The studies this deployment serves: ``TL_STUDIES``, a comma-separated list of study
    ids, packaged or in ``TL_STUDIES_DIR`` (default: the first study alone), each definition
    read and checked now, so that a service configured for a study it cannot read does not
    start."""
    raw = (os.environ if env is None else env).get(STUDIES_SETTING, "") or DEFAULT_STUDY_ID
    studies = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for study_id in studies:
        if not _STUDY_ID.match(study_id):
            raise StudyDefinitionError(f"{STUDIES_SETTING}: {study_id!r} is not a study id")
        study_definition(study_id)
    if not studies:
        raise StudyDefinitionError(f"{STUDIES_SETTING} names no study")
    return studies


def acting_study(provenance: Provenance) -> str:
    """The study a change belongs to: the one its provenance names (the study of the
    command's token), else the first study (a change stored before studies were named, or
    of no study, such as the first administrator's account)."""
    return provenance.study_id or DEFAULT_STUDY_ID


def record_key(study_id: str | None, key: str) -> str:
    """The key of a study's record (a subject id, a record id) wherever records of several
    studies meet: ``key`` itself for the first study (and a record naming none), as its
    records were keyed before studies were named, else ``<study_id>/<key>``. The Kafka key
    of a published record follows the same rule (``CloudEvent.kafka_key``), so a local view
    keyed by the records' Kafka keys is keyed by this."""
    return study_key(study_id, key, DEFAULT_STUDY_ID).decode()


def schema() -> dict[str, object]:
    """The JSON Schema of a definition file, generated from the model."""
    generated = StudyDefinition.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://trial-ledger.invalid/schemas/study-definition/{SCHEMA_VERSION}",
        **generated,
    }


def schema_text() -> str:
    """The schema as it is committed (``studies/study-definition.schema.json``)."""
    return json.dumps(schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


class _FloatInDefinition(ValueError):
    pass


def _no_float(text: str) -> object:
    raise _FloatInDefinition(f"the number {text} is a JSON float")
