"""`make up` / `make down` choose docker compose only where a Docker engine answers, and
deploy/compose.sh makes the secrets file on the host. No engine runs here: a stand-in
`docker` on PATH answers `info` as told and records what it was asked."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.files import DEPLOY, ROOT, run


def fake_docker(folder: Path, engine: bool) -> Path:
    """A `docker` that succeeds at `info` only when ``engine``, and logs its arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{folder}/calls"\n'
        f'if [ "$1" = info ]; then exit {0 if engine else 1}; fi\n'
        'if [ "$2" = port ] || [ "$4" = port ]; then echo 127.0.0.1:8100; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def dry_run(target: str, path: Path, **env: str) -> str:
    """The commands `make -n` would run (sub-makes recurse, still without running)."""
    environment = {**os.environ, "PATH": f"{path}:{os.environ['PATH']}", **env}
    environment.pop("TL_DEPLOY", None)
    environment.update(env)
    result = run(["make", "--no-print-directory", "-n", target], cwd=ROOT, env=environment)
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("engine", "env", "expected"),
    [
        (False, {}, "deploy/local/services.sh start"),
        (True, {}, "deploy/compose.sh up"),
        (True, {"TL_DEPLOY": "local"}, "deploy/local/services.sh start"),
        (False, {"TL_DEPLOY": "compose"}, "deploy/compose.sh up"),
    ],
)
def test_up_uses_compose_only_with_an_engine_unless_told(
    tmp_path: Path, engine: bool, env: dict[str, str], expected: str
) -> None:
    output = dry_run("up", fake_docker(tmp_path, engine), **env)
    other = {"deploy/compose.sh up", "deploy/local/services.sh start"} - {expected}
    assert expected in output and not other & {line.strip() for line in output.splitlines()}


def test_down_with_an_engine_stops_the_stack_and_the_local_processes(tmp_path: Path) -> None:
    output = dry_run("down", fake_docker(tmp_path, engine=True))
    assert "deploy/compose.sh down" in output and "deploy/local/infra.sh stop" in output


def test_an_unknown_deploy_mode_is_refused(tmp_path: Path) -> None:
    output = dry_run("up", fake_docker(tmp_path, engine=False), TL_DEPLOY="kubernetes")
    assert "TL_DEPLOY must be local or compose, not kubernetes" in output


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """compose.sh beside a copy of its files, so that it writes .env there, not in deploy/."""
    folder = tmp_path / "deploy"
    folder.mkdir()
    for name in (
        "compose.sh",
        ".env.example",
        "docker-compose.yml",
        "local/witness.sh",
        "local/processes.sh",
    ):
        (folder / name).parent.mkdir(exist_ok=True)
        shutil.copy2(DEPLOY / name, folder / name)
    return folder


def compose_sh(folder: Path, command: str, docker: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [str(folder / "compose.sh"), command],
        # the witness's binaries, which compose.sh builds first, from the repository's cache
        env={**os.environ, "PATH": f"{docker}:{os.environ['PATH']}",
             "TL_CACHE_DIR": str(ROOT / ".cache")},
    )  # fmt: skip


def test_up_creates_the_secrets_file_with_random_passwords(
    deploy_copy: Path, tmp_path: Path
) -> None:
    docker = fake_docker(tmp_path / "bin", engine=True)
    result = compose_sh(deploy_copy, "up", docker)
    assert result.returncode == 0, result.stderr
    env_file = deploy_copy / ".env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    pattern = r"^TL_PG_(?:SUPERUSER_)?PASSWORD=([0-9a-f]{48})$"
    passwords = re.findall(pattern, env_file.read_text(), re.MULTILINE)
    assert len(set(passwords)) == 2
    assert (
        f"-f {deploy_copy}/docker-compose.yml up --detach --build --wait"
        in (docker / "calls").read_text()
    )


def test_up_keeps_an_existing_secrets_file(deploy_copy: Path, tmp_path: Path) -> None:
    (deploy_copy / ".env").write_text("TL_PG_PASSWORD=mine\n")
    compose_sh(deploy_copy, "up", fake_docker(tmp_path / "bin", engine=True))
    assert (deploy_copy / ".env").read_text() == "TL_PG_PASSWORD=mine\n"


def test_down_without_a_secrets_file_has_no_stack_to_stop(
    deploy_copy: Path, tmp_path: Path
) -> None:
    docker = fake_docker(tmp_path / "bin", engine=True)
    result = compose_sh(deploy_copy, "down", docker)
    assert result.returncode == 0
    assert not (docker / "calls").exists()
