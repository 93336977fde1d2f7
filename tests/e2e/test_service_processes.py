"""A command service in two processes (``TL_ENROLLMENT_HTTP_PROCESSES=2``,
``shared.web.processes``) on the real stack: both serve the port, every command is in
the ledger exactly once (the second relay waits as a standby), and the ledger verifies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.e2e.stack import Stack, running_stack
from tests.e2e.test_audit import cli
from tests.support import eventually

PASSWORD = "a long enough passphrase"
SUBJECTS = [f"P-{n:03d}" for n in range(30)]


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux: /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue  # ended while read
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


async def register(stack: Stack, session: dict[str, str], subject: str) -> None:
    """On a connection of its own, so that the kernel may give it to either process."""
    async with httpx.AsyncClient(base_url=stack.enrollment.base_url, timeout=15) as client:
        answer = await client.post(
            "/subjects", json={"subject_id": subject, "site_id": "ZJU-1"}, headers=session
        )
    assert answer.status_code == 201, answer.text


async def test_two_processes_of_a_service_keep_every_command_once(
    enrollment_settings_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**enrollment_settings_env, "TL_ENROLLMENT_HTTP_PROCESSES": "2"}
    async with running_stack(env, tmp_path) as stack:
        first = stack.processes["enrollment"].process
        assert first is not None

        async def both_running() -> bool:
            return len(children(first.pid)) == 1

        await eventually(both_running, what="the enrollment service's second process")
        session = await stack.member("inv.two", PASSWORD, "investigator")
        for start in range(0, len(SUBJECTS), 10):
            await asyncio.gather(
                *(register(stack, session, s) for s in SUBJECTS[start : start + 10])
            )
        auditor = await stack.member("aud.two", PASSWORD, "auditor")

        async def all_in_ledger() -> bool:
            answers = [await stack.projections.get(f"/subjects/{s}", headers=auditor)
                       for s in SUBJECTS]  # fmt: skip
            return all(a.status_code == 200 for a in answers)

        await eventually(all_in_ledger, what="every registration in the ledger's view")
        for subject in SUBJECTS:
            trail = await stack.projections.get(
                "/trail", params={"subject_id": subject}, headers=auditor
            )
            kinds = [row["event_type"] for row in trail.json()]
            assert kinds.count("SubjectRegistered.v1") == 1, (subject, kinds)
        token = auditor["Authorization"].removeprefix("Bearer ")
        verified = await cli(stack, token, "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert first.poll() is None and len(children(first.pid)) == 1  # both still serve
