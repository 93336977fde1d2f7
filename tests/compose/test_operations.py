"""docs/operations.md, "With docker compose", run for real on a Docker engine: the stack
comes up healthy, takes the demo trial through its published ports and verifies; then
every step the guide gives an operator (watch, stop and start, a crash, backups and
restores into fresh volumes, key rotation, an upgrade) keeps the ledger whole; finally
``down -v``. The steps run in order on one project; each is a test of its own so that a
report names the step that broke."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.compose.stack import APPLICATIONS, DATABASES, Compose, require_engine, sh
from tools.demo.story import SITE

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "ci.admin"
AUDITOR = "ci.auditor"
SERVICES_STOPPED_FOR_RESTORE = APPLICATIONS


@dataclass
class Run:
    """What the steps hand on: the stack, the passwords, the ledger as last verified."""

    stack: Compose
    passwords: dict[str, str] = field(default_factory=dict)
    entries: int = 0

    def password(self, user_id: str) -> str:
        return self.passwords.setdefault(user_id, f"Ci-{secrets.token_urlsafe(18)}-9a")

    def verified(self) -> dict[str, Any]:
        """verify as the auditor passes, and the ledger has every entry it had."""
        report = self.stack.verify(self.stack.log_in(AUDITOR, self.password(AUDITOR)))
        assert report["entries"] >= self.entries, report
        self.entries = report["entries"]
        return report


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    require_engine()
    stack = Compose.create(tmp_path_factory.mktemp("compose"))
    yield Run(stack)
    stack.run("--profile", "tools", "down", "--volumes", "--remove-orphans", check=False)


def dump(stack: Compose, folder: Path) -> None:
    """The guide's PostgreSQL backup: one custom-format dump per database, and the roles."""
    folder.mkdir(exist_ok=True)
    for db in DATABASES:
        with (folder / f"{db}.dump").open("wb") as out:
            subprocess.run(  # noqa: S603 (docker compose, no shell)
                stack.command("exec", "-T", "postgres", "pg_dump", "-U", "postgres",
                              "--format=custom", db), stdout=out, check=True)  # fmt: skip
    globals_sql = stack.exec("postgres", "pg_dumpall", "-U", "postgres", "--globals-only").stdout
    (folder / "globals.sql").write_text(globals_sql)


def restore(stack: Compose, folder: Path) -> None:
    """The guide's restore into empty databases, as the superuser, services stopped."""
    stack.run("stop", *SERVICES_STOPPED_FOR_RESTORE)
    for db in DATABASES:
        stack.exec("postgres", "psql", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                  "-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)",
                  "-c", f"CREATE DATABASE {db} OWNER trial_ledger")  # fmt: skip
        with (folder / f"{db}.dump").open("rb") as dumped:
            subprocess.run(  # noqa: S603
                stack.command("exec", "-T", "postgres", "pg_restore", "-U", "postgres",
                              "--exit-on-error", "-d", db), stdin=dumped, check=True)  # fmt: skip


def volume_tar(stack: Compose, service: str, folder: str, archive: Path, create: bool) -> None:
    """The guide's volume copy: ``$C run --rm -T --no-deps --entrypoint tar SERVICE czf -``
    (or ``xzf -`` to restore) with the stack stopped."""
    args = ("run", "--rm", "-T", "--no-deps", "--entrypoint", "tar", service)
    if create:
        with archive.open("wb") as out:
            subprocess.run(stack.command(*args, "czf", "-", "-C", folder, "."),  # noqa: S603
                           stdout=out, check=True)  # fmt: skip
    else:
        with archive.open("rb") as archived:
            subprocess.run(stack.command(*args, "xzf", "-", "-C", folder),  # noqa: S603
                           stdin=archived, check=True)  # fmt: skip


def fresh_volume(stack: Compose, name: str) -> None:
    sh(["docker", "volume", "rm", f"{stack.project}_{name}"])


def test_up_builds_the_images_and_waits_until_everything_is_healthy(run: Run) -> None:
    run.stack.run("up", "--detach", "--build", "--wait")
    listed = run.stack.run("ps", "--format", "{{.Service}} {{.Status}}").stdout.splitlines()
    assert len(listed) == len(APPLICATIONS) + 3, listed  # + kafka, postgres, witness
    assert all("(healthy)" in line for line in listed), listed


def test_the_first_administrator_is_made_in_the_identity_container(run: Run) -> None:
    run.stack.exec("identity", "python", "-m", "services.identity", "bootstrap-admin",
                   "--user-id", ADMIN, "--name", "CI Admin", "--site", SITE,
                   input=run.password(ADMIN) + "\n")  # fmt: skip
    token = run.stack.log_in(ADMIN, run.password(ADMIN))
    created = httpx.post(f"{run.stack.url('identity')}/users", json={
        "user_id": AUDITOR, "printed_name": "CI Auditor", "site": SITE, "roles": ["auditor"],
        "password": run.password(AUDITOR)}, headers={"Authorization": f"Bearer {token}"},
        timeout=30)  # fmt: skip
    assert created.status_code == 201, created.text


def test_the_demo_trial_runs_through_the_published_ports_and_verifies(run: Run) -> None:
    export = run.stack.folder / "demo-export.json"
    sh([sys.executable, "-m", "tools.demo", "--admin-id", ADMIN, *run.stack.url_options(),
        "--export", str(export)], cwd=ROOT, timeout=900,
       env={**os.environ, "TL_DEMO_ADMIN_PASSWORD": run.password(ADMIN)})  # fmt: skip
    assert export.stat().st_size > 0
    report = run.verified()
    assert report["entries"] > 100 and not report["findings"], report


def test_health_readiness_quarantine_and_lag_answer_as_the_guide_shows(run: Run) -> None:
    for name in APPLICATIONS:
        ready = httpx.get(f"{run.stack.url(name)}/ready", timeout=10)
        assert ready.status_code == 200, (name, ready.text)
    assert '"level"' in run.stack.run("logs", "--no-log-prefix", "enrollment").stdout
    quarantine = ("python", "-m", "shared.adapters.quarantine", "list")
    quarantined = run.stack.exec("enrollment", *quarantine, "--service", "enrollment")
    assert quarantined.stdout.strip() == ""
    retry = ("python", "-m", "shared.adapters.quarantine", "retry")
    run.stack.exec("adverse_events", *retry, "--service", "adverse_events")
    lag = ("/opt/kafka/bin/kafka-consumer-groups.sh", "--bootstrap-server", "localhost:9092")
    groups = run.stack.exec("kafka", *lag, "--describe", "--all-groups")
    assert "trialledger-projections" in groups.stdout, groups.stdout


def test_down_and_up_keep_every_entry(run: Run) -> None:
    run.stack.run("down")
    run.stack.run("up", "--detach", "--wait")
    run.verified()


def test_a_new_application_password_in_the_env_file_is_set_by_up(run: Run) -> None:
    run.stack.write_env({"TL_PG_PASSWORD": secrets.token_hex(24)})
    run.stack.run("up", "--detach", "--wait")
    run.verified()


def test_a_crashed_service_is_restarted_and_healthy_again(run: Run) -> None:
    before = run.stack.inspect("enrollment")
    os.kill(before["State"]["Pid"], signal.SIGKILL)  # a crash, not a `docker stop`
    after = run.stack.wait_healthy("enrollment")
    assert after["RestartCount"] > before["RestartCount"]
    run.verified()


@pytest.mark.part11("11.10(c)")
def test_postgres_backup_restores_into_a_fresh_volume(run: Run) -> None:
    backup = run.stack.folder / "backup"
    dump(run.stack, backup)
    run.stack.run("down")
    fresh_volume(run.stack, "postgres_data")
    run.stack.run("run", "--rm", "databases")  # the roles, on the new volume
    restore(run.stack, backup)
    run.stack.run("up", "--detach", "--wait")
    run.verified()


@pytest.mark.part11("11.10(c)")
def test_kafka_volume_copy_restores_into_a_fresh_volume(run: Run) -> None:
    archive = run.stack.folder / "kafka_data.tgz"
    run.stack.run("stop")
    volume_tar(run.stack, "kafka", "/var/lib/kafka/data", archive, create=True)
    run.stack.run("up", "--detach", "--wait")
    run.stack.run("down")
    fresh_volume(run.stack, "kafka_data")
    volume_tar(run.stack, "kafka", "/var/lib/kafka/data", archive, create=False)
    run.stack.run("up", "--detach", "--wait")
    run.verified()


def test_the_topics_are_rebuilt_from_the_event_stores_into_a_fresh_volume(run: Run) -> None:
    run.stack.run("down")
    fresh_volume(run.stack, "kafka_data")
    run.stack.run("run", "--rm", "topics")
    run.stack.run("up", "--detach", "--wait", "postgres")
    for db in DATABASES:
        table = "ingest_offsets" if db == "projections" else "relay_positions"
        run.stack.exec("postgres", "psql", "-U", "postgres", "-d", db, "-c", f"DELETE FROM {table}")
    run.stack.run("up", "--detach", "--wait")
    run.verified()


def test_the_keys_are_backed_up_and_the_record_pair_rotates(run: Run) -> None:
    archive = run.stack.folder / "keys.tgz"
    volume_tar(run.stack, "keys", "/var/lib/trial-ledger/keys", archive, create=True)
    assert archive.stat().st_size > 0
    run.stack.run("run", "--rm", "--no-deps", "--entrypoint", "rm", "keys",
                  "/var/lib/trial-ledger/keys/record/record.key",
                  "/var/lib/trial-ledger/keys/record/record.pub")  # fmt: skip
    run.stack.run("run", "--rm", "--no-deps", "keys")
    run.stack.run("restart", "enrollment", "infusion", "adverse_events", "assessments")
    listed = run.stack.run("run", "--rm", "--no-deps", "--entrypoint", "ls", "keys",
                           "/var/lib/trial-ledger/keys/public").stdout.split()  # fmt: skip
    assert any(name.startswith("record-") for name in listed), listed  # the old key, archived
    for name in ("enrollment", "infusion", "adverse_events", "assessments"):
        run.stack.wait_healthy(name)
    run.verified()


def test_an_upgrade_rebuilds_the_image_under_a_new_tag(run: Run) -> None:
    run.stack.run("build", env={**os.environ, "TL_IMAGE_TAG": "ci-after"})
    run.stack.write_env({"TL_IMAGE_TAG": "ci-after"})
    run.stack.run("up", "--detach", "--wait")
    for name in APPLICATIONS:
        assert run.stack.inspect(name)["Config"]["Image"] == "trial-ledger:ci-after", name
    run.verified()


def test_a_rollback_to_the_previous_tag_before_anything_new_is_recorded(run: Run) -> None:
    run.stack.write_env({"TL_IMAGE_TAG": "ci-before"})
    run.stack.run("up", "--detach", "--wait")
    assert run.stack.inspect("identity")["Config"]["Image"] == "trial-ledger:ci-before"
    run.verified()


def test_down_with_volumes_removes_everything(run: Run) -> None:
    run.stack.run("down", "--volumes")
    left = sh(["docker", "volume", "ls", "--quiet", "--filter", f"name={run.stack.project}_"])
    assert left.stdout.strip() == ""
