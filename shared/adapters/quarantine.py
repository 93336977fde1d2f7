"""The operator's view of a service's relay quarantine (docs/operations.md, Quarantine).

    python -m shared.adapters.quarantine list  --service adverse_events [--all]
    python -m shared.adapters.quarantine retry --service adverse_events

``list`` prints the records the relay could not publish (JSON lines: store position,
event id, type, Kafka key, reason, what it is held behind). ``retry`` asks the running
relay to try them again now (after the fix is deployed, or the topic's limit raised);
the relay also retries on start and on its own timer. Nothing here publishes or
changes an event: the relay alone does, in store order.

Reads the service's settings from the environment (``TL_<SERVICE>_DATABASE_URL``,
``TL_<SERVICE>_TOPIC``), like the service itself.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import asyncpg
import typer

from shared.adapters.relay import RETRY_CHANNEL
from shared.kernel.settings import ServiceSettings, SettingsError

app = typer.Typer(help="A service's relay quarantine: list it, or ask the relay to retry it.")
Service = Annotated[str, typer.Option(help="the service whose relay it is, e.g. enrollment")]

_LIST = (
    "SELECT notification_id AS position, event_id::text, event_type, kafka_key, reason, "
    "held_behind, quarantined_at, attempts, last_attempt_at, released_at "
    'FROM "{schema}".relay_quarantine WHERE topic = $1 AND ($2 OR released_at IS NULL) '
    "ORDER BY notification_id"
)


@app.command("list")
def list_(service: Service, all_: Annotated[bool, typer.Option("--all")] = False) -> None:
    """The quarantined records, oldest first (``--all``: released ones too)."""
    settings = _settings(service)

    async def rows() -> list[dict[str, object]]:
        connection = await asyncpg.connect(settings.database.dsn)
        try:
            table = f'"{settings.database.schema}".relay_quarantine'
            exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            if not exists:
                return []
            sql = _LIST.format(schema=settings.database.schema)
            return [dict(r) for r in await connection.fetch(sql, settings.topic, all_)]
        finally:
            await connection.close()

    found = asyncio.run(rows())
    for row in found:
        print(json.dumps(row, default=str))
    typer.echo(f"{len(found)} record(s) of {settings.topic}", err=True)


@app.command()
def retry(service: Service) -> None:
    """Ask the running relay of ``service`` to retry its quarantine now."""
    settings = _settings(service)

    async def notify() -> None:
        connection = await asyncpg.connect(settings.database.dsn)
        try:
            await connection.execute("SELECT pg_notify($1, $2)", RETRY_CHANNEL, settings.topic)
        finally:
            await connection.close()

    asyncio.run(notify())
    typer.echo(f"asked the relay of {settings.topic} to retry its quarantine", err=True)


def _settings(service: str) -> ServiceSettings:
    try:
        return ServiceSettings.from_env(service)
    except SettingsError as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(2) from None


if __name__ == "__main__":
    sys.exit(app())
