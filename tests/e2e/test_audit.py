"""End to end for the auditor: commands on the running services reach the ledger through
Kafka; the auditor API and CLI show the trail, verify the ledger, export a copy that
verifies offline, and reconcile the ledger with every service's store."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import Stack
from tests.support import eventually, screening_json

pytestmark = pytest.mark.integration
PASSWORD = "a long enough passphrase"


async def run_subject(stack: Stack, session: dict[str, str]) -> None:
    signature = await stack.signature(
        session, "responsibility", "enrollment/consent/S-301", PASSWORD, "lin.wei"
    )
    steps = [
        ("/subjects", {"subject_id": "S-301", "site_id": "ZJU-1"}),
        ("/subjects/S-301/consent", {
            "form_version": "ICF v2.1", "signed_on": "2026-11-02", "obtained_by": "Lin Wei",
            "signature": signature,
        }),
        ("/subjects/S-301/screening", screening_json()),
        ("/subjects/S-301/corrections", {
            "field": "consent.form_version", "new_value": "ICF v2.2", "reason": "version misread",
        }),
    ]  # fmt: skip
    for path, body in steps:
        response = await stack.enrollment.post(path, json=body, headers=session)
        assert response.status_code in (200, 201), response.text


async def cli(stack: Stack, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env, "TL_AUDITOR_TOKEN": token}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.projections.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.part11("11.10(b)", "review")
async def test_the_auditor_sees_verifies_exports_and_reconciles(
    stack: Stack, tmp_path: Path
) -> None:
    session = await stack.member("lin.wei", PASSWORD, "investigator")
    await stack.create_user("aud.kim", PASSWORD, "auditor")
    await run_subject(stack, session)
    as_auditor = await stack.log_in("aud.kim", PASSWORD)
    new_subject = {"subject_id": "S-302", "site_id": "Z"}
    denied = await stack.enrollment.post("/subjects", json=new_subject, headers=as_auditor)
    assert denied.status_code == 403
    auditor = await stack.log_in("aud.kim", PASSWORD)
    token = auditor["Authorization"].split()[1]

    async def subject_in_ledger() -> bool:
        trail = await stack.projections.get(
            "/trail", params={"subject_id": "S-301"}, headers=auditor
        )
        return {r["event_type"] for r in trail.json()} >= {"ValueCorrected.v1"}

    await eventually(subject_in_ledger, what="S-301 in the ledger")

    trail = (await stack.projections.get(
        "/trail", params={"subject_id": "S-301"}, headers=auditor
    )).json()  # fmt: skip
    consent = next(r for r in trail if r["event_type"] == "ConsentSigned.v1")
    assert (consent["signer_name"], consent["signature_meaning"]) == ("Lin Wei", "responsibility")
    correction = next(r for r in trail if r["event_type"] == "ValueCorrected.v1")
    assert (correction["old_value"], correction["new_value"]) == ('"ICF v2.1"', '"ICF v2.2"')
    assert correction["reason"] == "version misread"
    state = (await stack.projections.get("/subjects/S-301", headers=auditor)).json()
    assert state["status"] == "screened" and state["consent"]["form_version"] == "ICF v2.2"
    refused = await stack.projections.get("/verify", headers=session)
    assert refused.status_code == 403

    async def checkpointed() -> bool:
        verified = (await stack.projections.get("/verify", headers=auditor)).json()
        assert verified["ok"], verified
        return bool(verified["latest_checkpoint"] == verified["entries"])

    await eventually(checkpointed, what="a checkpoint of the whole ledger", timeout=30)

    verified = await cli(stack, token, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True

    out = tmp_path / "export.json"
    exported = await cli(stack, token, "export", str(out), "--subject", "S-301")
    assert exported.returncode == 0, exported.stderr
    document = json.loads(out.read_text())
    keys = ["--checkpoint-key", str(stack.keys / "checkpoint.pub"),
            "--record-key", str(stack.keys / "record.pub")]  # fmt: skip
    offline = await cli(stack, token, "verify-export", str(out), *keys)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert f"inclusion proofs verified: {len(document['entries'])}" in offline.stdout
    assert len(document["entries"]) >= 5 and document["subject_id"] == "S-301"
    assert document["endpoints"]["version"] == "NCT05030779/def-1/endpoints/2"
    assert "<svg" in (tmp_path / "export.json.plots" / "swimmer.svg").read_text()
    size = str(document["checkpoint"]["size"])
    figures = await cli(stack, token, "endpoints", "--position", size)
    assert json.loads(figures.stdout) == document["endpoints"], figures.stderr

    trail_cli = await cli(stack, token, "trail", "--subject", "S-301", "--json")
    assert trail_cli.returncode == 0, trail_cli.stderr
    assert {r["event_type"] for r in json.loads(trail_cli.stdout)} == {
        r["event_type"] for r in trail
    }
    first = min(r["position"] for r in trail)
    as_of = await cli(stack, token, "subject", "S-301", "--position", str(first))
    assert json.loads(as_of.stdout)["status"] == "registered"
    inclusion = await cli(stack, token, "proof", "--position", str(first))
    assert json.loads(inclusion.stdout)["position"] == first
    csv_out = tmp_path / "export.csv"
    assert (await cli(stack, token, "export", str(csv_out), "--csv")).returncode == 0
    assert csv_out.read_text().startswith("position,event_type,subject,payload")
    rebuilt = await cli(stack, token, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (await stack.projections.get("/subjects/S-301", headers=auditor)).json() == state

    reconciled = await cli(stack, token, "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    report = json.loads(reconciled.stdout)
    assert report["sources"]["/trial-ledger/enrollment"] >= 6
    assert report["ok"], report["differences"]
