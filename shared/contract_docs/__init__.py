"""The published contracts, generated from the code and checked in under ``docs/``.

- ``docs/asyncapi.yaml``: every topic, its key and messages, their CloudEvents envelope;
- ``docs/schemas/<module>/<EventType>.v<N>.json``: JSON Schema of each event version's
  ``data``, and ``docs/schemas/CloudEvent.json`` for the envelope;
- ``docs/openapi/<service>.json``: each service's HTTP API.

``python -m shared.contract_docs`` (``make contracts``) writes them; ``--check`` and
tests/contracts report drift. Output is deterministic: sorted keys, one trailing newline.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

from shared.contract_docs import asyncapi, discovery
from shared.contract_docs.openapi import openapi_document
from shared.contract_docs.schemas import envelope_schema, event_schema

REGENERATE = "make contracts (or: python -m shared.contract_docs)"
ASYNCAPI = "docs/asyncapi.yaml"
# Everything under these directories is generated: a file the generator would not write
# is stale.
OWNED_DIRECTORIES = ("docs/schemas", "docs/openapi")


def documents(root: Path) -> dict[str, str]:
    """Every published document's text by its path relative to ``root`` (the repository)."""
    texts = {ASYNCAPI: _yaml(asyncapi.document(_release(root), discovery.channels()))}
    texts["docs/schemas/CloudEvent.json"] = _json(envelope_schema())
    for module_name, module in discovery.contract_modules().items():
        for contract in discovery.defined_events(module):
            path = f"docs/schemas/{module_name}/{contract.event_type}.json"
            texts[path] = _json(event_schema(contract))
    for service, create_app in discovery.app_factories().items():
        texts[f"docs/openapi/{service}.json"] = _json(openapi_document(create_app))
    return dict(sorted(texts.items()))


def on_disk(root: Path) -> dict[str, str]:
    """The checked-in documents, by the same relative paths."""
    paths = [root / ASYNCAPI] if (root / ASYNCAPI).exists() else []
    for directory in OWNED_DIRECTORIES:
        paths.extend(p for p in (root / directory).rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(paths)}


def differences(generated: dict[str, str], checked_in: dict[str, str]) -> list[str]:
    """One line per document that is missing, different or extra."""
    lines = []
    for path in sorted(generated.keys() | checked_in.keys()):
        if path not in checked_in:
            lines.append(f"{path}: missing (the code defines it)")
        elif path not in generated:
            lines.append(f"{path}: extra (the code no longer defines it)")
        elif generated[path] != checked_in[path]:
            lines.append(f"{path}: differs from what the code generates")
    return lines


def write(root: Path) -> list[str]:
    """Write every document under ``root`` and delete stale ones; returns what changed."""
    generated, checked_in = documents(root), on_disk(root)
    changes = differences(generated, checked_in)
    for path in checked_in.keys() - generated.keys():
        (root / path).unlink()
    for path, text in generated.items():
        if checked_in.get(path) != text:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
    return changes


def _release(root: Path) -> str:
    with (root / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def _json(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so that descriptions read as they were written."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def _yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=100)
