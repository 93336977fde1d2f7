"""The real services as processes, for end-to-end tests: identity and enrollment on free
ports, each with its own schema and topic, real keys, and a bootstrapped administrator."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from services.projections.studies import study_schema
from shared.kernel.keys import ensure_pair, load_public_key
from shared.kernel.settings import ServiceSettings, SettingsError
from shared.study import DEFAULT_STUDY_ID, STUDIES_SETTING
from tests.support import eventually, free_port, isolated, logged_in

ADMIN, ADMIN_PASSWORD = "admin", "bootstrap passphrase 1"
SERVICES = ("identity", "enrollment", "infusion", "adverse_events", "assessments", "projections")


@dataclass
class Stack:
    identity: httpx.AsyncClient
    enrollment: httpx.AsyncClient
    infusion: httpx.AsyncClient
    adverse_events: httpx.AsyncClient
    assessments: httpx.AsyncClient
    projections: httpx.AsyncClient
    identity_settings: ServiceSettings
    enrollment_settings: ServiceSettings
    infusion_settings: ServiceSettings
    adverse_events_settings: ServiceSettings
    assessments_settings: ServiceSettings
    projections_settings: ServiceSettings
    keys: Path
    env: dict[str, str]
    processes: dict[str, ServiceProcess]

    def record_public_key(self) -> Any:
        return load_public_key(self.keys / "record.pub")

    async def log_in(self, user_id: str, password: str) -> dict[str, str]:
        return await logged_in(self.identity, user_id, password)

    async def member(self, user_id: str, password: str, *roles: str) -> dict[str, str]:
        """A new account with ``roles``, logged in: its session."""
        await self.create_user(user_id, password, *roles)
        return await self.log_in(user_id, password)

    async def create_user(
        self, user_id: str, password: str, *roles: str, admin: dict[str, str] | None = None
    ) -> None:
        """Create an account as the administrator (``admin``: their session, else a new one)."""
        admin = admin or await self.log_in(ADMIN, ADMIN_PASSWORD)
        body = {
            "user_id": user_id,
            "printed_name": user_id.replace(".", " ").title(),
            "site": "ZJU-1",
            "roles": list(roles),
            "password": password,
        }
        response = await self.identity.post("/users", json=body, headers=admin)
        assert response.status_code == 201, response.text

    async def study_log_in(self, study_id: str, user_id: str, password: str) -> dict[str, str]:
        """A session of ``user_id`` for ``study_id`` (identity's ``/studies/<id>/login``)."""
        body = {"user_id": user_id, "password": password}
        answer = await self.identity.post(f"/studies/{study_id}/login", json=body)
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def bootstrap_study_admin(
        self, study_id: str, user_id: str, site: str = "ZJU-1"
    ) -> tuple[int, str]:
        """``bootstrap-study-admin`` on the host, as an operator runs it: exit code, output."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.identity", "bootstrap-study-admin",
            "--study", study_id, "--user-id", user_id, "--site", site,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip
        output, _ = await process.communicate()
        return process.returncode or 0, output.decode()

    async def study_admin(self, study_id: str, user_id: str, password: str) -> dict[str, str]:
        """A new account made ``study_id``'s first administrator, logged in for the study."""
        await self.create_user(user_id, password)
        code, output = await self.bootstrap_study_admin(study_id, user_id)
        assert code == 0, output
        return await self.study_log_in(study_id, user_id, password)

    async def signature(
        self,
        headers: dict[str, str],
        meaning: str,
        purpose: str,
        password: str,
        user_id: str | None = None,
        study_id: str | None = None,
    ) -> dict[str, str]:
        """A signing assertion from identity's ``/signing`` (``/studies/<id>/signing`` with
        ``study_id``: identity signs in the token's study, which the path must name)."""
        body = {"meaning": meaning, "purpose": purpose, "password": password, "user_id": user_id}
        path = "/signing" if study_id is None else f"/studies/{study_id}/signing"
        response = await self.identity.post(path, json=body, headers=headers)
        assert response.status_code == 200, response.text
        return {"assertion": response.json()["assertion"]}


@asynccontextmanager
async def running_stack(env: dict[str, str], folder: Path) -> AsyncIterator[Stack]:
    keys = folder / "keys"
    keys.mkdir()
    env = {**env}
    for name in ("token", "record", "checkpoint"):
        private, public = ensure_pair(keys, name)
        env[f"TL_{name.upper()}_PRIVATE_KEY_FILE"] = str(private)
        env[f"TL_{name.upper()}_PUBLIC_KEY_FILE"] = str(public)
    async with AsyncExitStack() as stack:
        identity = await stack.enter_async_context(isolated("identity", env))
        enrollment = await stack.enter_async_context(isolated("enrollment", env))
        infusion = await stack.enter_async_context(isolated("infusion", env))
        adverse = await stack.enter_async_context(isolated("adverse_events", env))
        assessments = await stack.enter_async_context(isolated("assessments", env))
        projections = await stack.enter_async_context(isolated("projections", env))
        for settings in (identity, enrollment, infusion, adverse, assessments, projections):
            prefix = f"TL_{settings.service.upper()}"
            env[f"{prefix}_DATABASE_SCHEMA"] = settings.database.schema
            env[f"{prefix}_TOPIC"] = settings.topic
        env["TL_PROJECTIONS_SOURCES"] = ",".join(
            s.topic for s in (identity, enrollment, infusion, adverse, assessments)
        )
        env["TL_CHECKPOINT_INTERVAL_SECONDS"] = "0.5"
        for name in SERVICES:  # every service knows where the others answer
            port = free_port()
            env[f"TL_{name.upper()}_HTTP_PORT"] = str(port)
            env[f"TL_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        await _bootstrap_admin(env)
        # the ledgers of studies beyond the first are schemas the projections service
        # makes beside its own: dropped after it stops (exit stacks unwind last-in first)
        stack.push_async_callback(_drop_study_ledgers, projections, env.get(STUDIES_SETTING, ""))
        processes: dict[str, ServiceProcess] = {}
        clients = [
            await stack.enter_async_context(_service(name, env, folder, processes))
            for name in SERVICES
        ]
        yield Stack(
            identity=clients[0],
            enrollment=clients[1],
            infusion=clients[2],
            adverse_events=clients[3],
            assessments=clients[4],
            projections=clients[5],
            identity_settings=identity,
            enrollment_settings=enrollment,
            infusion_settings=infusion,
            adverse_events_settings=adverse,
            assessments_settings=assessments,
            projections_settings=projections,
            keys=keys,
            env=env,
            processes=processes,
        )


@asynccontextmanager
async def shared_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, **settings: str
) -> AsyncIterator[Stack]:
    """A stack that several tests share (a module's or a package's), with extra ``TL_*``
    ``settings``; without the settings of deploy/local it fails, never skips."""
    try:
        ServiceSettings.from_env("enrollment")
    except SettingsError as error:
        pytest.fail(f"{error}: run with the settings of deploy/local (make test)", pytrace=False)
    folder = tmp_path_factory.mktemp(name)
    async with running_stack({**os.environ, **settings}, folder) as stack:
        yield stack


async def _drop_study_ledgers(projections: ServiceSettings, studies: str) -> None:
    connection = await asyncpg.connect(projections.database.dsn)
    try:
        for study in {s.strip() for s in studies.split(",")} - {"", DEFAULT_STUDY_ID}:
            schema = study_schema(projections.database.schema, study)
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


async def _bootstrap_admin(env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.identity", "bootstrap-admin",
        "--user-id", ADMIN, "--name", "Ada Admin", "--site", "ZJU-1",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    output, _ = await process.communicate(f"{ADMIN_PASSWORD}\n".encode())
    assert process.returncode == 0, output.decode()


class ServiceProcess:
    """``python -m services.<name>`` (or ``module``) on a fixed free port, restartable."""

    def __init__(
        self, name: str, env: dict[str, str], folder: Path, label: str | None = None
    ) -> None:
        """``label``: a second process of the same service (a standby), on a port and a
        log of its own."""
        self.name = name
        self.module = f"services.{name}"
        port_key = f"TL_{name.upper()}_HTTP_PORT"
        self.port = free_port() if label else int(env.get(port_key) or free_port())
        self.env = {**os.environ, **env, port_key: str(self.port)}
        self.log = folder / f"{label or name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        # idle connections dropped before uvicorn's 5 s keep-alive closes them: reusing one
        # the server is closing at that moment fails the request with a ReadError
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=15,
                                        limits=httpx.Limits(keepalive_expiry=2.0))  # fmt: skip

    async def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(  # noqa: ASYNC220, S603
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        await eventually(self._healthy, timeout=60, what=f"{self.name} service healthy")
        # a token is refused (503) until the service has read identity's withdrawals once:
        # started means ready for tokens, or a loaded machine turns a slow first read of
        # the topic into a test's failure
        await eventually(self._reads_revocations, timeout=60,
                         what=f"{self.name} confirms it read the identity topic")  # fmt: skip

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 30)

    async def kill(self) -> None:
        """kill -9: no shutdown, no flush; whatever was in flight is cut off."""
        if self.process is not None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 30)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def _reads_revocations(self) -> bool:
        checks = (await self.client.get("/ready")).json().get("checks", {})
        return bool(checks.get("revocations", "ok") == "ok")

    async def _healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        # its own server, bound to its port: another process on that port answers /health too
        if f"running on http://127.0.0.1:{self.port} " not in self.log.read_text():
            return False
        try:
            return (await self.client.get("/health")).status_code == 200
        except httpx.TransportError:
            return False


@asynccontextmanager
async def _service(
    name: str, env: dict[str, str], folder: Path, processes: dict[str, ServiceProcess]
) -> AsyncIterator[httpx.AsyncClient]:
    service = ServiceProcess(name, env, folder)
    processes[name] = service
    try:
        await service.start()
        yield service.client
    finally:
        await service.stop()
        await service.client.aclose()
