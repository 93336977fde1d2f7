"""deploy/postgres: the compose stack's roles and databases, run for real on the local
PostgreSQL as its superuser, with a role and databases of the test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from tests.deploy.files import DEPLOY, ROOT, run

INFRA = ROOT / "deploy" / "local" / "infra.sh"
SQL = DEPLOY / "postgres" / "roles-and-databases.sql"


def superuser(sql: str, env: dict[str, str] | None = None) -> None:
    result = run(
        [str(INFRA), "superuser-sql", "postgres"], input=sql, env={**os.environ, **(env or {})}
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    if not os.environ.get("TL_PG_PORT"):
        pytest.fail("TL_PG_PORT is unset: run with `make test` (deploy/local)", pytrace=False)
    run = uuid.uuid4().hex[:8]
    names = {
        "TL_PG_USER": f"test_role_{run}",
        "TL_PG_PASSWORD": f"pw{run}",
        "TL_DATABASES": f"test_db_{run}_a  test_db_{run}_b",
    }
    yield names
    drops = [f"DROP DATABASE IF EXISTS {db};" for db in names["TL_DATABASES"].split()]
    superuser("\n".join([*drops, f"DROP ROLE IF EXISTS {names['TL_PG_USER']};"]))


async def connect(names: dict[str, str], database: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1",
        port=int(os.environ["TL_PG_PORT"]),
        database=database,
        user=names["TL_PG_USER"],
        password=names["TL_PG_PASSWORD"],
    )


@pytest.mark.integration
async def test_the_role_logs_in_and_owns_one_database_per_service(
    names: dict[str, str],
) -> None:
    superuser(SQL.read_text(), names)
    for database in names["TL_DATABASES"].split():
        connection = await connect(names, database)
        try:
            owner = await connection.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database
            )
            writer = await connection.fetchval(
                "SELECT pg_has_role(current_user, 'ledger_writer', 'MEMBER')"
            )
        finally:
            await connection.close()
        assert (owner, writer) == (names["TL_PG_USER"], True)


@pytest.mark.integration
async def test_a_second_run_sets_the_new_password_and_keeps_the_databases(
    names: dict[str, str],
) -> None:
    superuser(SQL.read_text(), names)
    database = names["TL_DATABASES"].split()[0]
    connection = await connect(names, database)
    await connection.execute("CREATE TABLE kept (n int)")
    await connection.close()
    names["TL_PG_PASSWORD"] += "x"
    superuser(SQL.read_text(), names)
    connection = await connect(names, database)
    try:
        assert await connection.fetchval("SELECT to_regclass('kept') IS NOT NULL")
    finally:
        await connection.close()


def test_the_job_refuses_a_password_that_would_break_the_database_urls() -> None:
    env = {"TL_PG_USER": "trial_ledger", "TL_DATABASES": "x", "TL_PG_PASSWORD": "p@ss/word"}
    result = run(
        ["bash", str(DEPLOY / "postgres" / "init-databases.sh")], env={**os.environ, **env}
    )
    assert result.returncode == 2
    assert "letters, digits" in result.stderr
