"""``cli verify-export``: an export file and the auditor's keys, nothing else (no database,
no network, no TL_* settings); exit 0 only when everything verifies."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from subprocess import CompletedProcess

from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from services.projections.cli import app
from tests.projections.test_offline import LOG, WITNESS, alter_payload, export, position_of
from tests.support import RECORD_KEY, finished


def write(tmp_path: Path, document: dict[str, object]) -> tuple[Path, list[str]]:
    """The export as a file, and the options naming the auditor's keys."""
    out, record = tmp_path / "export.json", tmp_path / "record.pub"
    out.write_text(json.dumps(document, indent=2))
    record.write_bytes(
        RECORD_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    keys = ["--vkey", LOG.vkey(), "--witness", WITNESS.vkey(), "--record-key", str(record)]
    return out, keys


def verified_offline(file: Path, *options: str, timeout: float = 120) -> CompletedProcess[str]:
    """``python -m services.projections.cli verify-export`` run as an auditor runs it: a
    process of its own, with no TL_* setting; it must exit 0 (everything verified)."""
    bare = {name: value for name, value in os.environ.items() if not name.startswith("TL_")}
    cli = [sys.executable, "-m", "services.projections.cli", "verify-export", str(file)]
    return finished([*cli, *options], timeout=timeout, env=bare)


def test_it_runs_with_no_settings_at_all_and_exits_0_when_everything_verifies(
    tmp_path: Path,
) -> None:
    out, keys = write(tmp_path, export())
    done = verified_offline(out, *keys)
    assert done.stdout.splitlines()[-1] == "verify-export: OK"
    assert "cosigned by witness.example/w1" in done.stdout


def test_a_tampered_export_exits_1_naming_each_failure_with_its_position(tmp_path: Path) -> None:
    document = export()
    alter_payload(document)
    out, keys = write(tmp_path, document)
    result = CliRunner().invoke(app, ["verify-export", str(out), *keys])
    assert result.exit_code == 1
    here = position_of(document, "ScreeningResultRecorded.v1")
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert [line.split(":")[:2] for line in failed] == [
        [f"FAILED position {here}", " inclusion"],
        [f"FAILED position {here}", " event_copy"],
    ]
    assert result.stdout.splitlines()[-1] == "verify-export: 2 failures"


def test_the_report_is_json_on_demand(tmp_path: Path) -> None:
    out, keys = write(tmp_path, export("S-001"))
    result = CliRunner().invoke(app, ["verify-export", str(out), *keys, "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["ok"] and report["subject_id"] == "S-001"


def test_without_keys_it_says_it_had_only_the_exports_own(tmp_path: Path) -> None:
    out, _ = write(tmp_path, export())
    result = CliRunner().invoke(app, ["verify-export", str(out)])
    assert result.exit_code == 0
    assert "note: checkpoint keys: only the export's own (1)" in result.stdout


def test_an_unreadable_file_or_key_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    assert CliRunner().invoke(app, ["verify-export", str(tmp_path / "bad.json")]).exit_code == 2
    out, _ = write(tmp_path, export())
    wrong = CliRunner().invoke(app, ["verify-export", str(out), "--witness", LOG.vkey()])
    assert wrong.exit_code == 2  # a log key given as a witness's
