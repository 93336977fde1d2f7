"""SDTM datasets written as SAS transport files, version 5 (the FDA's format), with
pyreadstat; and their trace table as CSV (docs/exports.md). The mapping is
``services.projections.sdtm``'s; this module only writes."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas
import pyreadstat

from services.projections.sdtm import TRACE_COLUMNS, Dataset

TRACE_FILE = "ledger-trace.csv"


def frame(dataset: Dataset) -> pandas.DataFrame:
    """The dataset as a data frame: text columns with "" for a missing value (SAS's blank),
    numeric ones as floats with NaN (SAS's missing)."""
    columns = {}
    for variable in dataset.variables:
        values = [row[variable.name] for row in dataset.rows]
        if variable.numeric:
            columns[variable.name] = pandas.Series(values, dtype="float64")
        else:
            columns[variable.name] = pandas.Series(
                ["" if v is None else str(v) for v in values], dtype="object"
            )
    return pandas.DataFrame(columns)


def write_xpt(dataset: Dataset, directory: Path) -> Path:
    """``<directory>/<name>.xpt``, SAS transport version 5, its member and labels named."""
    path = directory / f"{dataset.name.lower()}.xpt"
    pyreadstat.write_xport(
        frame(dataset),
        str(path),
        file_label=dataset.label,
        column_labels=[variable.label for variable in dataset.variables],
        table_name=dataset.name,
        file_format_version=5,
    )
    return path


def write_trace(rows: list[tuple[str, ...]], directory: Path) -> Path:
    path = directory / TRACE_FILE
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(TRACE_COLUMNS)
        writer.writerows(rows)
    return path
