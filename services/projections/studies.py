"""A ledger per study (docs/operations.md, "Several studies"; docs/auditing.md, "One
ledger per study").

The deployment's first study (``shared.study.DEFAULT_STUDY_ID``) keeps the ledger it always
had: its schema (``TL_PROJECTIONS_DATABASE_SCHEMA``), consumer group and origin, so that a
ledger begun before studies were named goes on unchanged. Every other served study
(``TL_STUDIES``) has a ledger of its own with the same tables: in a schema of its own
(``study_schema``), written by an ingest session of its own (``group_id``), its checkpoints
naming an origin of its own (``<the first study's origin>/<study>``), with its own views
and exports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from services.projections.ledger import LedgerStore
from shared.kernel.settings import DatabaseSettings, SettingsError
from shared.study import DEFAULT_STUDY_ID

GROUP_ID = "trialledger-projections"  # the first study's consumer group, as it always was
_MAX_IDENTIFIER = 63  # PostgreSQL's identifiers are cut at 63 bytes


def group_id(study_id: str) -> str:
    """The Kafka consumer group a study's ingest commits its offsets under (for lag: the
    offsets a ledger reads from are kept in its own tables)."""
    return GROUP_ID if study_id == DEFAULT_STUDY_ID else f"{GROUP_ID}.{study_id}"


def study_schema(base: str, study_id: str) -> str:
    """The schema of ``study_id``'s ledger: the deployment's (``base``) for the first study;
    ``study_<id>`` beside ``public``, else ``<base>_study_<id>``, for any other (the id in
    lower case, each run of other characters than letters and digits as ``_``)."""
    if study_id == DEFAULT_STUDY_ID:
        return base
    slug = re.sub(r"[^a-z0-9]+", "_", study_id.lower())
    prefix = "study_" if base == "public" else f"{base}_study_"
    return f"{prefix}{slug}"[:_MAX_IDENTIFIER]


def study_database(database: DatabaseSettings, study_id: str) -> DatabaseSettings:
    """``database`` with the schema of ``study_id``'s ledger."""
    return replace(database, schema=study_schema(database.schema, study_id))


def ledger_studies(served: Sequence[str]) -> tuple[str, ...]:
    """The studies that have a ledger here: the first study (whose ledger holds the records
    naming no study, and the dead letters), then every other served study, in order."""
    return tuple(dict.fromkeys((DEFAULT_STUDY_ID, *served)))


def study_ledgers(
    database: DatabaseSettings, origin: str | None, served: Sequence[str]
) -> dict[str, LedgerStore]:
    """A ledger (not yet opened) for each study of ``ledger_studies(served)``; two studies
    whose schemas would have the same name are refused (``SettingsError``)."""
    studies = ledger_studies(served)
    schemas: dict[str, str] = {}
    for study in studies:
        schema = study_schema(database.schema, study)
        if schema in schemas:
            raise SettingsError(
                f"studies {schemas[schema]} and {study} would share the ledger schema {schema!r}"
            )
        schemas[schema] = study
    return {
        study: LedgerStore(
            study_database(database, study),
            origin,
            None if study == DEFAULT_STUDY_ID else study,
        )
        for study in studies
    }


async def open_ledgers(ledgers: Mapping[str, LedgerStore]) -> None:
    """Open every ledger of ``study_ledgers``, the first study's first: a study's ledger
    begun without ``TL_LEDGER_ORIGIN`` is named after the first study's origin
    (``<its origin>/<study>``), so that every origin of a deployment shows which it is."""
    first = ledgers[DEFAULT_STUDY_ID]
    await first.open()
    for study, ledger in ledgers.items():
        if study != DEFAULT_STUDY_ID:
            if ledger.wanted_origin is None:
                ledger.wanted_origin = f"{first.origin}/{study}"
            await ledger.open()
