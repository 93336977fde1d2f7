"""The auditor's command-line tool.

    python -m services.projections.cli --help

Every command but ``verify-export`` needs an access token of an auditor or monitor
(``--token`` or ``TL_AUDITOR_TOKEN``), from the identity service's ``POST /login``; each
call is recorded in the ledger's ``auditor_activity``. ``verify-export`` checks an export
file alone: no database, no network, no settings, only the keys the auditor gives.

``--study <id>`` (before the command, or ``TL_STUDY``) reads that study's ledger (one of
``TL_STUDIES``; by default the deployment's first study's); the token must be for it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from services.projections import offline, xpt
from services.projections.application import ProjectionsApplication, TrailFilter
from services.projections.config import LedgerConfig
from services.projections.define import define_xml
from services.projections.domain import VerificationReport
from services.projections.integrity import WitnessTrust
from services.projections.notes import COSIGNATURE_V1, ED25519, NoteError, Verifier
from services.projections.studies import open_ledgers, study_ledgers
from shared.adapters.revocations import RevocationView
from shared.kernel.errors import Refusal
from shared.kernel.keys import load_public_key
from shared.kernel.principals import TokenRevoked
from shared.kernel.settings import SecuritySettings, ServiceSettings, SettingsError
from shared.study import DEFAULT_STUDY_ID, StudyDefinitionError, served_studies, study_definition
from shared.web.auth import AuthError, Principal, TokenVerifier
from shared.web.http import study_not_granted

app = typer.Typer(
    help="Trial Ledger auditor tools: trail, accounts, subject, endpoints, verify, proof, "
    "export, export-odm, export-sdtm, verify-export."
)
console = Console(stderr=True)  # progress and messages; results go to standard output
T = TypeVar("T")
Token = Annotated[str, typer.Option(envvar="TL_AUDITOR_TOKEN", help="auditor access token")]
_chosen = {"study": DEFAULT_STUDY_ID}  # the study whose ledger the command reads (--study)


@app.callback()
def study(
    study_id: Annotated[
        str,
        typer.Option(
            "--study",
            envvar="TL_STUDY",
            help="the study whose ledger is read (one of TL_STUDIES); the token must be for it",
        ),
    ] = DEFAULT_STUDY_ID,
) -> None:
    """Trial Ledger auditor tools, over one study's ledger (``--study``)."""
    _chosen["study"] = study_id


async def not_withdrawn(settings: ServiceSettings, who: Principal) -> None:
    """``TokenRevoked`` if the projections service's revocations view (in the database the
    command line reads) withdraws ``who``'s token. The command line runs where the ledger's
    database is reachable, not necessarily the broker: it does not fail closed as the
    service does, it takes the view as the service last wrote it (docs/security.md)."""
    view = RevocationView(settings.database)
    await view.open()
    try:
        await view.refresh()
        refused = view.refusal(who)
    finally:
        await view.close()
    if refused is not None:
        raise TokenRevoked(f"access of this token was withdrawn ({refused[0]}): log in again")


def run(token: str, work: Callable[[ProjectionsApplication, Principal], Awaitable[T]]) -> T:
    """Open the ledger, identify the auditor, run ``work``; errors end with exit code 2
    and one line saying what failed (never a traceback)."""

    async def main() -> T:
        settings, security = ServiceSettings.from_env("projections"), SecuritySettings.from_env()
        who = TokenVerifier(load_public_key(security.token_public_key_file)).principal(token)
        await not_withdrawn(settings, who)
        config = LedgerConfig.from_env(security)
        chosen, served = _chosen["study"], served_studies()
        if chosen not in (DEFAULT_STUDY_ID, *served):
            raise SettingsError(f"study {chosen} is not served here (TL_STUDIES: "
                                f"{', '.join(served)})")  # fmt: skip
        ledgers = study_ledgers(settings.database, config.origin, served)
        opened = {study: ledgers[study] for study in dict.fromkeys((DEFAULT_STUDY_ID, chosen))}
        await open_ledgers(opened)  # the first study's too: another's origin is named after it
        ledger = opened[chosen]
        try:
            several = len(set((DEFAULT_STUDY_ID, *served))) > 1
            projections = ProjectionsApplication.configured(
                settings, config, ledger, chosen if several else None
            )
            if (refused := study_not_granted(who, chosen, "projections.cli")) is not None:
                await projections.refuse_study(who, "projections.cli", chosen)
                raise refused
            return await work(projections, who)
        finally:
            for each in opened.values():
                await each.close()

    try:
        return asyncio.run(main())
    except (AuthError, SettingsError, StudyDefinitionError) as error:
        console.print(f"[red]refused:[/red] {getattr(error, 'message', error)}")
        raise typer.Exit(2) from None
    except Refusal as error:  # the ledger's own refusal, named by its stable code
        console.print(f"[red]refused:[/red] {error.message} ({error.code})")
        raise typer.Exit(2) from None
    except Exception as error:  # the ledger's database unreachable, a bad argument ...
        console.print(f"[red]failed:[/red] {type(error).__name__}: {error}")
        raise typer.Exit(2) from None


@app.command()
def trail(
    token: Token,
    subject: str | None = None,
    user: str | None = None,
    record: str | None = None,
    event_type: Annotated[str | None, typer.Option("--type")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who did what, when and why: one row per field set or changed."""
    filters = TrailFilter(subject, user, record, event_type, since, until, limit)
    rows = run(token, lambda projections, who: projections.trail(who, filters))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("pos", "recorded (UTC)", "who", "event", "record", "field", "old", "new",
                  "why", "signed")  # fmt: skip
    for r in rows:
        signed = f"{r['signer_name']} ({r['signature_meaning']})" if r["signed_by"] else ""
        table.add_row(
            str(r["position"]), r["recorded_at"], f"{r['actor_name']} [{r['actor_role']}]",
            r["event_type"], f"{r['subject_id'] or ''} v{r['record_version']}", r["field"],
            _short(r["old_value"]), _short(r["new_value"]), r["reason"] or "", signed,
        )  # fmt: skip
    Console().print(table)


@app.command()
def accounts(
    token: Token,
    user: Annotated[str | None, typer.Option(help="one account: its changes, and its own")] = None,
) -> None:
    """The account review: who created, granted, revoked, deactivated, locked or unlocked
    which account, when and why; refused account changes; holders of forbidden role pairs
    (as GET /account-review, JSON)."""
    review = run(token, lambda projections, who: projections.account_review(who, user))
    print(json.dumps(review, indent=2))


@app.command()
def subject(
    token: Token,
    subject_id: str,
    as_of: datetime | None = None,
    position: int | None = None,
) -> None:
    """A subject's state now, as of a time (UTC), or at a ledger position."""
    state = run(token, lambda p, who: p.subject(who, subject_id, as_of, position))
    print(json.dumps(state, indent=2))


@app.command()
def endpoints(
    token: Token,
    as_of: datetime | None = None,
    position: int | None = None,
) -> None:
    """The trial's endpoints (docs/endpoints.md), now, as of a time, or at a position."""
    figures = run(token, lambda p, who: p.endpoints(who, as_of, position))
    print(json.dumps(figures, indent=2))


@app.command()
def verify(
    token: Token,
    stores: Annotated[
        bool, typer.Option(help="also compare every service's store with the ledger")
    ] = True,
    witness: Annotated[
        str | None,
        typer.Option(
            help="a witness's cosignature vkey: check the ledger against the "
            "checkpoints it cosigned (rollbacks, deleted checkpoints, rewrites)"
        ),
    ] = None,
    witness_url: Annotated[
        str | None,
        typer.Option(
            envvar="TL_WITNESS_URL",
            help="where that witness answers: ask it for "
            "the newest checkpoint it cosigned (an empty value: do not ask)",
        ),
    ] = None,
) -> None:
    """Recompute every leaf and root, check every checkpoint signature, and name every
    event stored by a service but missing from the ledger (TL_<SERVICE>_URL); with
    --witness, every checkpoint that witness cosigned still held."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("reading and hashing the ledger ...", total=None)

        def progress(n: int) -> None:
            bar.update(task, description=f"{n} entries")

        def work(p: ProjectionsApplication, who: Principal) -> Awaitable[VerificationReport]:
            trust = None if witness is None else p.witness_trust(witness)
            if trust is not None and witness_url is not None:
                trust = WitnessTrust(trust.verifier, witness_url or None)
            return p.verify(who, progress, token if stores else None, trust)

        report = run(token, work)
    print(json.dumps(report.to_json(), indent=2))
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def proof(
    token: Token,
    position: int | None = None,
    old_size: int | None = None,
) -> None:
    """An inclusion proof (--position) or a consistency proof (--old-size)."""
    if (position is None) == (old_size is None):
        console.print("give exactly one of --position and --old-size")
        raise typer.Exit(2)
    if position is not None:
        result = run(token, lambda p, who: p.inclusion_proof(who, position))
    else:
        result = run(token, lambda p, who: p.consistency_proof(who, old_size or 0))
    print(json.dumps(result, indent=2))


@app.command()
def export(
    token: Token,
    out: Path,
    subject: str | None = None,
    csv_format: Annotated[bool, typer.Option("--csv")] = False,
) -> None:
    """Entries with the signed checkpoint and inclusion proofs (JSON), or a CSV table
    of the same entries with their proofs, for offline verification."""
    document = run(token, lambda p, who: p.export(who, subject))
    if csv_format:
        with out.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["position", "event_type", "subject", "payload", "inclusion_proof",
                             "checkpoint"])  # fmt: skip
            checkpoint = json.dumps(document["checkpoint"])
            for e in document["entries"]:
                proof = " ".join(e["inclusion_proof"])
                event = e["event"]
                writer.writerow(
                    [
                        e["position"],
                        event["type"],
                        event.get("subject"),  # absent or null: no subject
                        e["payload"],
                        proof,
                        checkpoint,
                    ]
                )
    else:
        out.write_text(json.dumps(document, indent=2))
    plots = out.with_name(f"{out.name}.plots")
    for name, svg in document["plots"].items():
        (plots / name).parent.mkdir(parents=True, exist_ok=True)
        (plots / name).write_text(svg)
    console.print(f"exported {len(document['entries'])} entries to {out}, plots to {plots}/")


@app.command("export-odm")
def export_odm(
    token: Token,
    out: Path,
    as_of: datetime | None = None,
    position: int | None = None,
) -> None:
    """The trial as CDISC ODM 1.3.2 XML, with an audit record on every value and each
    signature, now, as of a time (UTC) or at a ledger position (docs/exports.md)."""
    xml = run(token, lambda p, who: p.odm(who, as_of, position))
    out.write_bytes(xml)
    console.print(f"wrote ODM 1.3.2 to {out} ({len(xml)} bytes)")


@app.command("export-sdtm")
def export_sdtm(
    token: Token,
    directory: Path,
    as_of: datetime | None = None,
    position: int | None = None,
) -> None:
    """SDTM datasets (SDTMIG 3.4: TA, TE, TS, DM, DS, EX, AE, LB, PC, RS, QS, SUPP--) as
    SAS transport v5 files, their define.xml (Define-XML 2.0) and ledger-trace.csv naming
    each row's ledger entries, now, as of a time (UTC) or at a ledger position
    (docs/exports.md). A domain with no row is not written."""
    datasets, trace = run(token, lambda p, who: p.sdtm(who, as_of, position))
    directory.mkdir(parents=True, exist_ok=True)
    written = [xpt.write_xpt(d, directory).name for d in datasets.values() if d.rows]
    xpt.write_trace(trace, directory)
    define = define_xml(datasets, datetime.now(UTC), study_definition(_chosen["study"]))
    (directory / "define.xml").write_bytes(define)
    console.print(f"wrote {', '.join(written)}, define.xml and {xpt.TRACE_FILE} to {directory}/")


@app.command("verify-export")
def verify_export(
    file: Path,
    vkey: Annotated[
        list[str] | None,
        typer.Option(help="a checkpoint verifier key of the ledger (C2SP vkey); several: repeat"),
    ] = None,
    checkpoint_key: Annotated[
        list[Path] | None,
        typer.Option(help="a checkpoint public key (PEM), named after the checkpoint's origin"),
    ] = None,
    origin: Annotated[str | None, typer.Option(help="the ledger the checkpoint must name")] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(help="a witness's verifier key (type 0x04) that must have cosigned"),
    ] = None,
    record_key: Annotated[
        list[Path] | None, typer.Option(help="a record-signature public key (PEM)")
    ] = None,
    full: Annotated[bool, typer.Option(help="refuse anything but a full export")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify an export file offline: no database, no network, no settings. Exit 0 only
    if everything verifies; else each failure with its position and kind, exit 1 (2: the
    file or a key cannot be read). Keys not given are taken from the export, and said so."""
    try:
        trusted = offline.TrustedKeys(
            checkpoint=[_vkey(v, ED25519, "--vkey") for v in vkey or ()],
            checkpoint_keys=[load_public_key(path) for path in checkpoint_key or ()],
            witnesses=[_vkey(v, COSIGNATURE_V1, "--witness") for v in witness or ()],
            record=[load_public_key(path) for path in record_key or ()],
            origin=origin,
            full=full,
        )
        document = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, SettingsError) as error:
        console.print(f"[red]cannot verify:[/red] {getattr(error, 'message', error)}")
        raise typer.Exit(2) from None
    report = offline.verify_export(document, trusted)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _vkey(text: str, kind: int, option: str) -> Verifier:
    try:
        return Verifier.parse_kind(text, kind)
    except NoteError as error:
        raise ValueError(f"{option}: {error}") from None


def _print_report(report: offline.ExportReport) -> None:
    print(
        f"{report.format}, scope {report.scope}"
        f"{f' ({report.subject_id})' if report.subject_id else ''}: {report.entries} entries"
    )
    print(f"checkpoint: {report.origin}, size {report.size}, root {report.root}")
    for name in report.signed_by:
        print(f"  signed by {name}")
    for cosignature in report.cosigned_by:
        print(f"  cosigned by {cosignature}")
    print(
        f"inclusion proofs verified: {report.proofs_verified}; "
        f"record signatures verified: {report.record_signatures_verified}"
    )
    for note in report.notes:
        print(f"note: {note}")
    for failure in report.failures:
        print(f"FAILED {failure.line()}")
    print("verify-export: OK" if report.ok else f"verify-export: {len(report.failures)} failures")


@app.command()
def rebuild(token: Token) -> None:
    """Drop the views and rebuild them from the ledger."""
    with Progress(SpinnerColumn(), TextColumn("rebuilding views ..."), console=console):
        count = run(token, lambda p, who: p.rebuild(who))
    console.print(f"rebuilt from {count} entries")


@app.command()
def reconcile(token: Token) -> None:
    """Every event of every service's store exactly once in the ledger, byte for byte, and
    nothing else; the stores are read through their services' APIs (TL_<SERVICE>_URL)."""
    with Progress(SpinnerColumn(), TextColumn("reading the event stores ..."), console=console):
        report = run(token, lambda p, who: p.reconcile(who, token))
    print(json.dumps(report, indent=2))
    raise typer.Exit(0 if report["ok"] else 1)


def _short(value: Any, width: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":
    sys.exit(app())
