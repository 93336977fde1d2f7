"""``python -m shared.contract_docs [--check] [--root DIR]``: write or check the documents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.contract_docs import REGENERATE, differences, documents, on_disk, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.contract_docs", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository")
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    arguments = parser.parse_args(argv)
    root: Path = arguments.root
    if arguments.check:
        drift = differences(documents(root), on_disk(root))
        for line in drift:
            print(line, file=sys.stderr)
        if drift:
            print(f"published contracts are out of date: run {REGENERATE}", file=sys.stderr)
        return 1 if drift else 0
    for line in write(root):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
