"""``python -m shared.study [--check] [--root DIR]``: write or check the JSON Schema of
study definitions (``studies/study-definition.schema.json``), and check every packaged
definition against the model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.study.loader import (
    DEFINITION_FILE,
    SCHEMA_FILE,
    StudyDefinitionError,
    load_definition,
    schema_text,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.study", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository")
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    arguments = parser.parse_args(argv)
    studies: Path = arguments.root / "studies"
    target = studies / SCHEMA_FILE
    failed = False
    for file in sorted(studies.glob(f"*/{DEFINITION_FILE}")):
        try:
            load_definition(file)
        except StudyDefinitionError as error:
            print(error, file=sys.stderr)
            failed = True
    wanted = schema_text()
    if arguments.check:
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != wanted:
            print(f"{target} is out of date: run python -m shared.study", file=sys.stderr)
            failed = True
    else:
        target.write_text(wanted, encoding="utf-8")
        print(f"wrote {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
