"""A wrong role on every command of every service, then normal traffic: every refusal is
a coded 403, each command service records it as an ``AccessDenied`` event that reaches
the ledger (a denial about no subject once stalled a whole relay), and nothing stalls."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from shared.contract_docs.discovery import app_factories
from shared.contract_docs.openapi import described_app
from shared.kernel.provenance import Role
from shared.web.http import Requires, api_routes
from tests.faults.conftest import PASSWORD, Faulty, loaded
from tests.support import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="package"),
]
PATH_VALUES = {
    "subject_id": "S-NOPE",
    "record_id": "00000000-0000-0000-0000-000000000000",
    "user_id": "no.one",
    "position": "1",
}
QUERY_VALUES = {"old_size": 1}  # the one required query parameter (a consistency proof)


def commands(service: str) -> list[tuple[str, str, str, frozenset[Role]]]:
    """Every route of ``service`` with a command: method, path, command, permitted roles."""
    app = described_app(app_factories()[service])
    found = []
    for route in api_routes(app):
        required = [d.call for d in route.dependant.dependencies if isinstance(d.call, Requires)]
        for requires in required:
            permitted = frozenset(app.state.authorisation.permissions[requires.command])
            for method in sorted(route.methods or ()):
                found.append((method, route.path_format, requires.command, permitted))
    return found


def reads(service: str) -> list[tuple[str, str, str, frozenset[Role]]]:
    """The projections' auditor routes: those its OpenAPI names roles for (the others,
    its checkpoints, are public)."""
    document = described_app(app_factories()[service]).openapi()
    return [("GET", path, path, frozenset(Role(r) for r in operation["x-permitted-roles"]))
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if method == "get" and "x-permitted-roles" in operation]  # fmt: skip


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


async def denials_by_source(faulty: Faulty) -> Counter[str]:
    rows = await faulty.ledger("SELECT source, count(*) AS n FROM ledger_entries "
                               "WHERE event_type = 'AccessDenied.v1' GROUP BY source")  # fmt: skip
    return Counter({r["source"]: r["n"] for r in rows})


@pytest.mark.part11("11.10(g)")
async def test_a_wrong_role_on_every_command_is_refused_recorded_and_stalls_nothing(
    faulty: Faulty,
) -> None:
    stack = faulty.stack
    sessions: dict[Role, dict[str, str]] = {}
    for role in Role:
        await stack.create_user(f"wrong.{role.value}", PASSWORD, role.value)
        sessions[role] = await stack.log_in(f"wrong.{role.value}", PASSWORD)
    before = await denials_by_source(faulty)
    refused: Counter[str] = Counter()
    for service in sorted(app_factories()):
        routes = reads(service) if service == "projections" else commands(service)
        assert routes, f"{service} has no commands"
        client = faulty.process(service).client
        for method, path, command, permitted in routes:
            wrong = [r for r in Role if r not in permitted]
            if not wrong:
                continue  # every role may (signing re-authentication, logging out)
            body: Any = {} if method == "POST" else None
            headers = sessions[wrong[0]]
            answer = await client.request(method, concrete(path), json=body, headers=headers,
                                          params=QUERY_VALUES)  # fmt: skip
            assert answer.status_code == 403, (service, command, wrong[0], answer.text)
            assert answer.json()["code"] in ("role_not_permitted", "forbidden"), answer.text
            refused[service] += 1

    async def recorded() -> bool:
        found = await denials_by_source(faulty)
        return all(found[f"/trial-ledger/{s}"] - before[f"/trial-ledger/{s}"] == n
                   for s, n in refused.items() if s != "projections")  # fmt: skip

    await faulty.refresh()
    await eventually(recorded, timeout=60, what="every refusal in the ledger")
    async with loaded(faulty, "AFTER") as load:  # normal traffic
        await load.until(10)
    await faulty.all_ready()
    await faulty.settled(load.acknowledged)
