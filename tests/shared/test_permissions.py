"""The one role x command table (``shared.kernel.permissions``): every route of every service's
app has its row (or is public by the table), every row a route, docs/security.md shows
exactly the table, and the role a user acts in is chosen by the table's precedence."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.projections import application as ledger_reads
from services.projections.api import create_app as create_projections_app
from services.projections.application import ProjectionsApplication
from services.projections.config import ConsoleConfig
from services.projections.console import COOKIE
from shared.contract_docs.discovery import app_factories
from shared.contract_docs.openapi import described_app
from shared.kernel.permissions import (
    AUDITOR_FIRST,
    CLINICAL_FIRST,
    END,
    GUIDE,
    OPERATIONS,
    STORE_COMMAND,
    TABLES,
    Rule,
    ServiceTable,
    check_tables,
    main,
    markdown,
    rewritten,
    table,
)
from shared.kernel.provenance import Role
from shared.web.auth import Forbidden, Principal
from shared.web.http import Authorisation, Caller, api_routes, authorised, command_app, command_of
from shared.web.service_app import CommandAct, CommandRouter, FromState
from tests.support import NOW, VERIFIER, bearer, principal

ROOT = Path(__file__).resolve().parents[2]
PATH_VALUES = {"subject_id": "S-NOPE", "position": "1"}
QUERY_VALUES = {"old_size": 1}
# rows no route reaches, by the application method that asks for them: the projections'
# command line (services/projections/cli.py)
COMMAND_LINE = {"projections.rebuild": "rebuild"}
CONSOLE = "projections.console"  # the console's pages (services/projections/console.py)


def routes(service: str) -> list[APIRoute]:
    app = described_app(app_factories()[service])
    return list(api_routes(app))


def named(route: APIRoute) -> list[str]:
    return [f"{method} {route.path_format}" for method in sorted(route.methods or ())]


def test_every_service_with_an_api_has_a_table_and_every_table_a_service() -> None:
    assert sorted(TABLES) == sorted(app_factories())


@pytest.mark.parametrize("service", sorted(set(TABLES) - {"projections"}))
@pytest.mark.part11("11.10(g)")
def test_every_route_of_a_command_service_has_its_row_or_is_public(service: str) -> None:
    rows = table(service)
    public = {*rows.public, *OPERATIONS}
    unlisted = [
        name
        for route in routes(service)
        if (command_of(route) or "") not in rows.permissions
        for name in named(route)
        if name not in public
    ]
    assert not unlisted, f"{service}: routes with no row in shared.kernel.permissions: {unlisted}"


@pytest.mark.parametrize("service", sorted(TABLES))
def test_every_public_route_of_the_table_is_a_route_that_needs_no_token(service: str) -> None:
    for route in routes(service):
        if any(name in table(service).public for name in named(route)):
            assert command_of(route) is None, route.path_format
            # what it depends on is only what the app holds (shared.web.service_app), no token
            states = [d.call for d in route.dependant.dependencies]
            assert all(isinstance(call, FromState) for call in states), route.path_format
    served = {name for route in routes(service) for name in named(route)}
    assert set(table(service).public) <= served


@pytest.mark.parametrize("service", sorted(set(TABLES) - {"projections"}))
def test_every_row_of_a_command_service_is_a_route_s_command(service: str) -> None:
    used = {command_of(route) for route in routes(service)}
    unused = set(table(service).permissions) - used
    assert not unused, f"{service}: rows of shared.kernel.permissions no route runs: {unused}"


@pytest.mark.parametrize("service", sorted(set(TABLES) - {"projections"}))
def test_every_command_service_reads_its_store_for_monitors_and_auditors(service: str) -> None:
    assert table(service).roles(STORE_COMMAND) == {Role.MONITOR, Role.AUDITOR}


class Reads(ProjectionsApplication):
    """The projections' application with its reader check only: it notes the action each
    read asks for and refuses it, so that no read goes on to the ledger."""

    def __init__(self) -> None:
        super().__init__(types.SimpleNamespace(pool=None, schema="unused"), [])  # type: ignore[arg-type]
        self.asked: list[str] = []

    async def authorise(self, who: Principal, action: str, parameters: dict[str, Any]) -> Role:
        self.asked.append(action)
        raise Forbidden(f"noted {action}")


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


async def test_every_projections_route_that_needs_a_token_asks_for_a_row() -> None:
    reads = Reads()
    app = create_projections_app(reads, VERIFIER)
    documented = app.openapi()["paths"]
    rows, asked = table("projections"), set()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://projections") as client:
        for route in api_routes(app):
            (name,) = named(route)
            if name in rows.public or name in OPERATIONS:
                continue
            reads.asked.clear()
            auditor = bearer(principal(Role.AUDITOR))
            answer = await client.get(concrete(route.path_format), params=QUERY_VALUES,
                                      headers=auditor)  # fmt: skip
            assert answer.status_code == 403, (name, answer.text)
            (action,) = reads.asked
            command = f"projections.{action}"
            roles = documented[route.path_format]["get"]["x-permitted-roles"]
            assert sorted(rows.roles(command)) == roles, name
            asked.add(command)
    for method in COMMAND_LINE.values():
        reads.asked.clear()
        with pytest.raises(Forbidden):
            await getattr(reads, method)(principal(Role.AUDITOR))
        asked.add(f"projections.{reads.asked[0]}")
    asked.add(await console_asks(reads))
    assert asked == set(rows.permissions)


async def console_asks(reads: Reads) -> str:
    """The row a console page asks for before any read (its pages are not API routes)."""
    reads.asked.clear()
    config = ConsoleConfig(identity_url="http://127.0.0.1:1")
    app = create_projections_app(reads, VERIFIER, console=config)
    token = bearer(principal(Role.AUDITOR))["Authorization"].removeprefix("Bearer ")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://projections") as client:
        answer = await client.get("/console/trial", headers={"cookie": f"{COOKIE}={token}"})
    assert answer.status_code == 403, answer.text
    return f"projections.{reads.asked[0]}"


def test_the_projections_api_documents_the_roles_every_ledger_read_permits() -> None:
    """Its routes are documented with one set (``READERS``): give them their own roles
    before the rows of the ledger's reads differ."""
    api_rows = [rule for rule in table("projections").rules if rule.command != CONSOLE]
    assert {rule.roles for rule in api_rows} == {ledger_reads.READERS}


def test_the_console_is_for_auditors_alone() -> None:
    assert table("projections").roles(CONSOLE) == {Role.AUDITOR}


@pytest.mark.part11("11.10(k)")
def test_the_guide_shows_exactly_the_table_of_the_code() -> None:
    guide = (ROOT / GUIDE).read_text(encoding="utf-8")
    assert rewritten(guide) == guide, "regenerate it: python -m shared.kernel.permissions --write"
    assert guide.count(END) == 1


def test_write_replaces_the_generated_section_only(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    stale = markdown().replace("| x |", "|  |", 1)
    (tmp_path / GUIDE).write_text(f"# before\n\n{stale}\nafter\n", encoding="utf-8")
    assert main(["--write", "--root", str(tmp_path)]) == 0
    assert (tmp_path / GUIDE).read_text(encoding="utf-8") == f"# before\n\n{markdown()}\nafter\n"


def test_the_table_names_every_role_in_each_column_header() -> None:
    header = markdown().splitlines()[2]
    assert all(f"`{role}`" in header for role in Role)


INV, SUB, COORD, PHARM = (Role.INVESTIGATOR, Role.SUB_INVESTIGATOR, Role.STUDY_COORDINATOR,
                          Role.CELL_THERAPY_PHARMACIST)  # fmt: skip
MON, AUD, ADMIN = Role.MONITOR, Role.AUDITOR, Role.ADMINISTRATOR


@pytest.mark.parametrize(
    ("service", "command", "held", "acting"),
    [
        ("enrollment", "enrollment.read_subject", {MON, INV}, INV),
        ("enrollment", "enrollment.register_subject", {COORD, SUB}, SUB),
        ("enrollment", "enrollment.register_subject", {COORD, AUD}, COORD),
        ("infusion", "infusion.read_treatment", {AUD, PHARM}, PHARM),
        ("infusion", STORE_COMMAND, {AUD, MON, INV}, MON),
        ("identity", "identity.read_users", {ADMIN, AUD}, AUD),
        ("identity", "identity.create_user", {ADMIN, AUD}, ADMIN),
        ("projections", "projections.trail", {MON, AUD}, AUD),
        ("projections", "projections.verify", {MON, INV}, MON),
        ("assessments", "assessments.assess_remission", {SUB}, None),
    ],
)
def test_a_user_with_several_roles_acts_in_the_first_permitted_one_of_the_table(
    service: str, command: str, held: set[Role], acting: str | None
) -> None:
    assert table(service).acting_role(command, held) == acting


def test_the_recorded_role_follows_the_table_s_precedence_not_the_enum_s_order() -> None:
    rule = Rule("trial.read", frozenset({Role.MONITOR, Role.AUDITOR}), "read")
    held = {MON, AUD}
    assert ServiceTable("t", (rule,), (), CLINICAL_FIRST).acting_role("trial.read", held) == MON
    assert ServiceTable("t", (rule,), (), AUDITOR_FIRST).acting_role("trial.read", held) == AUD


@pytest.mark.parametrize(("precedence", "acting"), [(CLINICAL_FIRST, MON), (AUDITOR_FIRST, AUD)])
async def test_a_caller_with_several_permitted_roles_is_recorded_in_the_table_s_one(
    precedence: tuple[Role, ...], acting: str
) -> None:
    rule = Rule("trial.read", frozenset({Role.MONITOR, Role.AUDITOR}), "read")
    rows = ServiceTable("t", (rule,), (), precedence)
    app = command_app("t", "t", {}, Authorisation(VERIFIER, rows, lambda denial: None))

    @app.post("/things")
    def things(caller: Annotated[Caller, authorised("trial.read")]) -> str:
        return caller.attribution(NOW).provenance.actor.role

    both = bearer(principal(Role.AUDITOR, Role.MONITOR))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/things", headers=both)
    assert (answer.status_code, answer.json()) == (200, acting)


def test_a_precedence_that_leaves_a_role_out_is_refused_at_import() -> None:
    rule = Rule("trial.read", frozenset({Role.MONITOR}), "read")
    with pytest.raises(ValueError, match="precedence must name every role"):
        check_tables({"t": ServiceTable("t", (rule,), (), (Role.AUDITOR, Role.MONITOR))})


def test_a_command_with_two_rows_is_refused_at_import() -> None:
    rule = Rule("trial.read", frozenset({Role.MONITOR}), "read")
    with pytest.raises(ValueError, match="two rows"):
        check_tables({"t": ServiceTable("t", (rule, rule), (), CLINICAL_FIRST)})


def test_a_command_without_a_row_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match=r"enrollment\.bake_cake"):
        table("enrollment").roles("enrollment.bake_cake")


def test_a_route_naming_a_command_without_a_row_is_refused_at_import() -> None:
    with pytest.raises(KeyError, match=r"enrollment\.bake_cake"):
        CommandRouter("enrollment").command("/cakes", "bake_cake")


async def test_a_route_that_takes_an_act_without_naming_its_command_is_never_run() -> None:
    router = CommandRouter("enrollment")
    ran = []

    @router.post("/subjects")
    async def unnamed(act: CommandAct) -> None:
        ran.append(act)

    app = FastAPI()
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        answer = await client.post("/subjects")
    assert answer.status_code == 500
    assert not ran
