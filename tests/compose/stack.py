"""A compose project of its own on the real Docker engine, driven the way
docs/operations.md tells an operator to drive ``deploy/docker-compose.yml``.

``Compose.run(...)`` is the guide's ``$C ...``: the same file, plus a project name, an env
file and an override that publishes the ports on free ones of 127.0.0.1 (so that the test
never meets a stack or a service that already listens on 8100-8105), all of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kernel.settings import DEFAULT_PORTS
from tests.deploy.files import COMPOSE_FILE, ENV_EXAMPLE
from tests.support import free_port

# published container ports: each service's HTTP port, the witness, Kafka's host listener
PUBLISHED = {**DEFAULT_PORTS, "witness": 7380, "kafka": 29092}
IMAGE_VARIABLES = ("TL_KAFKA_IMAGE", "TL_POSTGRES_IMAGE", "TL_PYTHON_IMAGE", "TL_DEBIAN_IMAGE")
DATABASES = ("identity", "enrollment", "infusion", "adverse_events", "assessments", "projections")
APPLICATIONS = tuple(DEFAULT_PORTS)


def engine_answers() -> bool:
    return sh(["docker", "info"], check=False).returncode == 0


def require_engine() -> None:
    """Compose tests fail loudly without an engine (as integration tests do without infra)."""
    if not engine_answers():
        pytest.fail("no Docker engine answers: run `make test-compose` (deploy/engine.sh)")


def sh(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it fails (unless check=False)."""
    check = options.pop("check", True)
    result = subprocess.run(  # noqa: S603 (docker and our own tools, no shell)
        args, capture_output=True, text=True, check=False, **options
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Compose:
    project: str
    folder: Path  # the env file, the override, the backups
    ports: dict[str, int]

    @classmethod
    def create(cls, folder: Path) -> Compose:
        stack = cls(f"tl-ci-{secrets.token_hex(3)}", folder, {n: free_port() for n in PUBLISHED})
        stack.write_env({"TL_IMAGE_TAG": "ci-before"})
        stack.override.write_text(
            "services:\n"
            + "".join(
                f"  {name}:\n    ports: !override\n      - 127.0.0.1:{port}:{PUBLISHED[name]}\n"
                for name, port in stack.ports.items()
            )
        )
        return stack

    @property
    def env_file(self) -> Path:
        return self.folder / "compose.env"

    @property
    def override(self) -> Path:
        return self.folder / "ports.override.yml"

    def write_env(self, settings: dict[str, str]) -> None:
        """deploy/.env as an operator makes it: the template, both passwords set
        (compose.sh's way), the image choices of this run (stand-ins, where set)."""
        values = self.env() if self.env_file.exists() else {}
        for line in ENV_EXAMPLE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                values.setdefault(key, value or secrets.token_hex(24))
        values |= {name: os.environ[name] for name in IMAGE_VARIABLES if os.environ.get(name)}
        values |= settings
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.env_file.chmod(0o600)

    def env(self) -> dict[str, str]:
        lines = self.env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def command(self, *args: str) -> list[str]:
        return ["docker", "compose", "--project-name", self.project,
                "--env-file", str(self.env_file), "-f", str(COMPOSE_FILE),
                "-f", str(self.override), *args]  # fmt: skip

    def run(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        """``$C <args>`` of docs/operations.md."""
        options.setdefault("timeout", 1200)
        return sh(self.command(*args), **options)

    def exec(self, service: str, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        """``$C exec -T SERVICE ...``: a command in the running service's container."""
        return self.run("exec", "-T", service, *args, **options)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def container(self, service: str) -> str:
        return self.run("ps", "--quiet", service).stdout.strip()

    def inspect(self, service: str) -> dict[str, Any]:
        found = json.loads(sh(["docker", "inspect", self.container(service)]).stdout)
        state: dict[str, Any] = found[0]
        return state

    def wait_healthy(self, service: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.inspect(service)
            if state["State"].get("Health", {}).get("Status") == "healthy":
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"{service} not healthy after {timeout}s: {state['State']}")
            time.sleep(2)

    def url_options(self) -> list[str]:
        """``--url NAME=URL`` for every service, for tools.demo on the published ports."""
        return [f"--url={name}={self.url(name)}" for name in APPLICATIONS]

    def log_in(self, user_id: str, password: str) -> str:
        answer = httpx.post(
            f"{self.url('identity')}/login",
            json={"user_id": user_id, "password": password},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def verify(self, token: str) -> dict[str, Any]:
        """The guide's ``$C --profile tools run --rm -e TL_AUDITOR_TOKEN audit verify``."""
        result = self.run("--profile", "tools", "run", "--rm", "-T", "-e", "TL_AUDITOR_TOKEN",
                          "audit", "verify", env={**os.environ, "TL_AUDITOR_TOKEN": token},
                          check=False)  # fmt: skip
        report: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{") :])
        assert result.returncode == 0 and report["ok"], result.stdout + result.stderr
        return report
