"""`python -m tools.demo`: run the nine-subject demo trial against the running system.

    make up && make admin ADMIN_ID=ada.admin ADMIN_NAME="Ada Admin" ADMIN_SITE=ZJU-1
    make demo ADMIN_ID=ada.admin        # asks for the administrator's password

The administrator's id and password come from ``--admin-id`` / ``TL_DEMO_ADMIN_ID`` and
``TL_DEMO_ADMIN_PASSWORD`` (else the password is asked for, or read from standard input
when it is not a terminal). Exit code 0: the trial ran and ``verify`` passed; 1: verify
failed; 2: a step was refused or a wait did not end.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from shared.kernel.settings import DEFAULT_PORTS
from tools.demo.client import SERVICES, Credentials, DemoError
from tools.demo.run import Options, run_demo
from tools.demo.story import SEED

app = typer.Typer(add_completion=False)
console = Console()


def service_urls(host: str, overrides: list[str]) -> dict[str, str]:
    """Each service's base URL: ``http://<host>:<port>``, the port from
    ``TL_<NAME>_HTTP_PORT`` or the default one, unless ``NAME=URL`` overrides it."""
    urls = {
        name: f"http://{host}:{os.environ.get(f'TL_{name.upper()}_HTTP_PORT', port)}"
        for name, port in DEFAULT_PORTS.items()
    }
    for override in overrides:
        name, _, url = override.partition("=")
        if name not in SERVICES or not url:
            raise typer.BadParameter(f"{override!r}: expected NAME=URL, NAME one of {SERVICES}")
        urls[name] = url
    return urls


def _password() -> str:
    given = os.environ.get("TL_DEMO_ADMIN_PASSWORD")
    if given:
        return given
    if sys.stdin.isatty():
        return getpass.getpass("administrator's password: ")
    return sys.stdin.readline().rstrip("\n")


@app.command()
def main(
    admin_id: Annotated[
        str, typer.Option(envvar="TL_DEMO_ADMIN_ID", help="an administrator made by `make admin`")
    ],
    seed: Annotated[int, typer.Option(help="chooses the clinical values")] = SEED,
    export: Annotated[Path, typer.Option(help="where the auditor export is written")] = Path(
        ".local/demo-export.json"
    ),
    host: Annotated[str, typer.Option(help="where the services listen")] = "127.0.0.1",
    url: Annotated[list[str] | None, typer.Option(help="NAME=URL for one service")] = None,
    patience: Annotated[float, typer.Option(help="seconds to wait for a view")] = 60.0,
) -> None:
    """Drive the nine-subject trial of NCT05030779 through the HTTP APIs, print its
    summary and the result of verify, and write the auditor export."""
    options = Options(service_urls(host, url or []), Credentials(admin_id, _password()),
                      seed, export, patience)  # fmt: skip
    try:
        summary = asyncio.run(run_demo(options, console))
    except DemoError as error:
        console.print(f"[red]demo stopped:[/red] {error}")
        raise typer.Exit(2) from None
    except httpx.TransportError as error:
        console.print(f"[red]demo stopped:[/red] {error!r}: is the system up (`make up`)?")
        raise typer.Exit(2) from None
    raise typer.Exit(0 if summary.verified else 1)


if __name__ == "__main__":
    app()
