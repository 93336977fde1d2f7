"""Bad input never reaches a 500: schemathesis fuzzes every operation of every service's
live OpenAPI document, as a user holding a role the operation permits.

One stack for the module: the six services as processes on the real Kafka and PostgreSQL
(``tests.e2e.stack``), with S-001 enrolled and infused so that cases naming it get past
the 404s. schemathesis runs as its command-line tool, configured per service:
each operation is called with the token of the first role its ``x-permitted-roles``
names. Every phase runs once (the schema's examples, boundary "coverage" cases, random
valid and invalid data, ``EXAMPLES`` per operation), then random cases repeat until the
service's ``BUDGET_SECONDS`` are spent. Checks: no 5xx; every 4xx is the coded body;
statuses, content types and bodies as documented; invalid data refused.

On the same stack, the classes of bad input fixed are checked on every operation of the
live documents: unreadable bodies (413, 415, 422) and a NUL in a query or a path (422).

Afterwards each command service's event store and the ledger hold the same number of
events: nothing refused was half-written, and nothing recorded was lost or stuck on its
way to the ledger.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.kernel.provenance import Role
from tests.e2e import flows
from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack, shared_stack
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

# enrollment last of the command services: a fuzzed withdrawal or death ends S-001's course
SERVICES = ("identity", "infusion", "adverse_events", "assessments", "enrollment", "projections")
COMMAND_SERVICES = SERVICES[:-1]
PASSWORD = "fuzzing passphrase 1"
EXAMPLES = 15  # random cases per operation and round
BUDGET_SECONDS = 12  # per service: schemathesis's own --max-time (coverage takes about 6)
CHECKS = (
    "not_a_server_error",
    "coded_error_body",  # tests/fuzz/checks.py
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Fuzzed:
    """The running stack, and a logged-in user of each role."""

    stack: Stack
    tokens: dict[str, str]

    def url(self, service: str) -> str:
        return str(self.stack.processes[service].client.base_url).rstrip("/")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzed]:
    async with shared_stack(tmp_path_factory, "fuzz") as stack:
        admin = await stack.log_in(ADMIN, ADMIN_PASSWORD)

        async def token(role: Role) -> str:
            user_id = f"fuzz.{role.value.replace('_', '-')}"
            await stack.create_user(user_id, PASSWORD, role.value, admin=admin)
            return (await stack.log_in(user_id, PASSWORD))["Authorization"]

        # concurrently (each account costs argon2 hashes), each on a record of its own:
        # one administrator's session, as concurrent logins of one user may conflict
        tokens = await asyncio.gather(*(token(role) for role in Role))
        by_role = {role.value: t for role, t in zip(Role, tokens, strict=True)}
        await treated(stack, admin, {"Authorization": by_role["cell_therapy_pharmacist"]})
        yield Fuzzed(stack, by_role)


async def treated(stack: Stack, admin: dict[str, str], pharmacist: dict[str, str]) -> None:
    """S-001 enrolled and infused, so that cases naming it (the documents' example subject,
    which schemathesis reuses) reach the rules behind the 404s: study days and windows of
    adverse events, assessments on the study calendar."""
    await stack.create_user("lin.wei", flows.PASSWORD, "investigator", admin=admin)
    investigator = await stack.log_in("lin.wei", flows.PASSWORD)
    await flows.treat(flows.Team(stack, investigator, pharmacist), "S-001", level=1, days_ago=30)


def configuration(document: dict[str, Any], tokens: dict[str, str]) -> str:
    """schemathesis.toml: the check module, nothing kept between runs (no example
    database, no cache in the repository), and each operation's token (public operations
    get none)."""
    lines = [
        'hooks = "tests.fuzz.checks"',
        "[cache]",
        "enabled = false",
        "[generation]",
        'database = "none"',
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if roles := operation.get("x-permitted-roles"):
                lines += [
                    "[[operations]]",
                    f"include-name = {json.dumps(f'{method.upper()} {path}')}",
                    f"headers = {{ Authorization = {json.dumps(tokens[roles[0]])} }}",
                ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("service", SERVICES)
def test_bad_input_never_answers_5xx(service: str, fuzzed: Fuzzed, tmp_path: Path) -> None:
    url = f"{fuzzed.url(service)}/openapi.json"
    config = tmp_path / "schemathesis.toml"
    config.write_text(configuration(httpx.get(url).json(), fuzzed.tokens))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", url,
        "--phases", "examples,coverage,fuzzing", "--checks", ",".join(CHECKS),
        "--max-examples", str(EXAMPLES), "--max-time", str(BUDGET_SECONDS),
        "--request-timeout", "15", "--no-color",
    ]  # fmt: skip
    result = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        command, cwd=ROOT, capture_output=True, text=True, timeout=BUDGET_SECONDS + 90, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


# --- the classes fixed, on every operation of the running services ----------------------

SAMPLE_PATH_VALUES = {"record_id": "8f0e4a52-3c1d-4e7b-9a35-2f6c0d1b7e44", "position": "1"}
BAD_BODIES = {
    "not UTF-8": (b'{"reason": "caf\xe9"}', "application/json", 422),
    "NUL in a string": (b'{"reason": "a\\u0000b"}', "application/json", 422),
    "lone surrogate": (b'{"reason": "\\ud800"}', "application/json", 422),
    "not JSON": (b"reason=typo", "application/x-www-form-urlencoded", 415),
    "too large": (b'{"reason": "' + b"x" * 70_000 + b'"}', "application/json", 413),
}


def operations(document: dict[str, Any], method: str) -> list[str]:
    """The path templates of the document's ``method`` operations."""
    return [path for path, methods in document["paths"].items() if method in methods]


def filled(template: str, nul: bool = False) -> str:
    """``template`` with sample path parameters (each ending in a NUL, with ``nul``)."""
    suffix = "%00" if nul else ""
    return re.sub(
        r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES.get(m.group(1), "S-001") + suffix, template
    )


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("bad", BAD_BODIES)
def test_every_post_refuses_an_unreadable_body_with_the_coded_answer(
    service: str, bad: str, fuzzed: Fuzzed
) -> None:
    content, content_type, status = BAD_BODIES[bad]
    with httpx.Client(base_url=fuzzed.url(service)) as client:
        for path in operations(client.get("/openapi.json").json(), "post"):
            headers = {"content-type": content_type, "authorization": fuzzed.tokens["monitor"]}
            response = client.post(filled(path), content=content, headers=headers)
            assert response.status_code == status, (path, response.text)
            assert response.json()["code"], path


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_refuses_a_nul_in_its_query_or_path(service: str, fuzzed: Fuzzed) -> None:
    # before authorisation too: a monitor may not write, and its denial must not record
    # a subject id with a NUL in it (it would be published to the ledger)
    headers = {"authorization": fuzzed.tokens["monitor"]}
    with httpx.Client(base_url=fuzzed.url(service), headers=headers) as client:
        document = client.get("/openapi.json").json()
        for method in ("get", "post"):
            body: dict[str, str] | None = {} if method == "post" else None
            paths = operations(document, method)
            urls = [f"{filled(path)}?q=a%00b" for path in paths]
            urls += [filled(path, nul=True) for path in paths if "{" in path]
            for url in urls:
                response = client.request(method, url, json=body)
                assert response.status_code == 422, (method, url, response.text)
                assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_that_needs_a_token_names_the_roles_it_permits(
    service: str, fuzzed: Fuzzed
) -> None:
    # else the fuzzing above would send no token there, and see only 401s
    with httpx.Client(base_url=fuzzed.url(service)) as client:
        document = client.get("/openapi.json").json()
        for method in ("get", "post"):
            body: dict[str, str] | None = {} if method == "post" else None
            for path in operations(document, method):
                response = client.request(method, filled(path), json=body)
                roles = document["paths"][path][method].get("x-permitted-roles")
                assert (response.status_code == 401) == bool(roles), (method, path, roles)


@pytest.mark.asyncio(loop_scope="module")
async def test_each_store_and_the_ledger_hold_the_same_events(fuzzed: Fuzzed) -> None:
    """After the fuzzing above (pytest keeps the module's order): nothing half-written,
    every stored event in the ledger, byte for byte (verify and reconcile, as an auditor
    runs them)."""
    auditor = {"Authorization": fuzzed.tokens["auditor"]}
    projections = fuzzed.stack.projections

    async def complete() -> bool:
        verified = (await projections.get("/verify", headers=auditor)).json()
        assert verified["ok"], verified
        return all(store["in_flight"] == 0 for store in verified["stores"])

    await eventually(complete, 60, "every store complete in verify")
    reconciled = (await projections.get("/reconcile", headers=auditor)).json()
    assert reconciled["ok"], reconciled["differences"]
