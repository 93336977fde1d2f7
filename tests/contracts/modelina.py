"""Python models made from docs/asyncapi.yaml by AsyncAPI's Modelina, as an integrator
makes them, and a check that they load published records.

Modelina is installed with ``npm ci`` from the lockfile in ``modelina/``, into
``$TL_CACHE_DIR/modelina`` (default ``.cache/modelina``) the first time; it needs Node.js 18+
and the npm registry then.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "5.10.1"
GENERATE = Path(__file__).with_name("modelina") / "generate.cjs"
PACKAGE = "asyncapimodels"  # the package Modelina's files import each other from

# Modelina 5.10.1's pydantic preset writes a `const` property as `default=''1.0''`, and an
# optional one as `default=None, default=''1.0''`: not Python. This is the one repair made
# to its output; anything else it gets wrong fails the test.
_CONST_DEFAULT = re.compile(r"(?:default=None, )?default=''([^']*)''")


def install() -> Path:
    """The directory whose node_modules holds Modelina ``VERSION``, installed by ``npm ci``
    from the lockfile beside ``generate.cjs``, so every run gets the same packages."""
    cache = Path(os.environ.get("TL_CACHE_DIR", ROOT / ".cache")).resolve() / "modelina"
    installed = cache / "node_modules/@asyncapi/modelina/package.json"
    if not (installed.exists() and json.loads(installed.read_text())["version"] == VERSION):
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(GENERATE.with_name(name), cache / name)
        npm = shutil.which("npm")
        assert npm, "Modelina needs Node.js and npm (18 or later)"
        subprocess.run(  # noqa: S603 (npm, a locked package)
            [npm, "ci", "--no-audit", "--no-fund"], cwd=cache, check=True, capture_output=True
        )
    return cache


def generate(asyncapi: Path, folder: Path) -> Path:
    """Modelina's models of ``asyncapi`` as the package ``folder/asyncapimodels``."""
    node = shutil.which("node")
    assert node, "Modelina needs Node.js (18 or later)"
    package = folder / PACKAGE
    subprocess.run(  # noqa: S603 (node, our script)
        [node, str(GENERATE), str(install()), str(asyncapi), str(package)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    for module in package.glob("*.py"):
        module.write_text(_CONST_DEFAULT.sub(r"default='\1'", module.read_text()))
    (package / "__init__.py").write_text("")
    return package


# Run in a fresh interpreter with the models on its path: reads records (one JSON text a
# line) and prints, for each that its type's model refuses, why.
_LOAD = """
import importlib, json, re, sys
for line in sys.stdin:
    record = json.loads(line)
    name = record["type"].replace(".v", "V")  # SubjectRegistered.v1: SubjectRegisteredV1
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()  # subject_registered_v1
    module = importlib.import_module("asyncapimodels." + snake)
    try:
        getattr(module, name).model_validate_json(line)
    except Exception as error:
        print(record["type"], record["id"], str(error).replace(chr(10), " ")[:300])
"""


def refused(package: Path, records: list[str]) -> list[str]:
    """Why each of ``records`` (JSON texts) is refused by the model of its type."""
    done = subprocess.run(  # noqa: S603 (our interpreter)
        [sys.executable, "-c", _LOAD], input="".join(r.strip() + "\n" for r in records),
        env={**os.environ, "PYTHONPATH": str(package.parent)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()
