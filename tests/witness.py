"""A real litewitness for tests: started by ``deploy/local/witness.sh`` in a state folder of
its own (its key, ssh-agent and SQLite store), on a free port, and stopped after."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "local" / "witness.sh"
BIN = Path(os.environ.get("TL_CACHE_DIR") or ROOT / ".cache") / "bin"


@dataclass
class Witness:
    url: str
    vkey: str
    env: dict[str, str]
    db: Path

    async def register(self, origin: str, vkeys: Sequence[str]) -> None:
        """Have it witness ``origin``, signed by ``vkeys`` (as ``witnessctl`` does)."""
        await _run(str(BIN / "witnessctl"), "add-log", "-db", str(self.db), "-origin", origin)
        for vkey in vkeys:
            await _run(str(BIN / "witnessctl"), "add-key", "-db", str(self.db),
                       "-origin", origin, "-key", vkey)  # fmt: skip

    async def register_served(self, projections: str, studies: str) -> str:
        """``witness.sh register``, as ``make up`` runs it: every served study's ledger
        (``studies``: ``TL_STUDIES``), read from ``projections``' public checkpoints."""
        env = {**self.env, "TL_STUDIES": studies}
        return await _run("bash", str(SCRIPT), "register", projections, env=env)

    async def stop(self) -> None:
        await _run("bash", str(SCRIPT), "stop", env=self.env)

    async def start(self) -> None:
        await _run("bash", str(SCRIPT), "start", env=self.env)


@asynccontextmanager
async def running_witness(folder: Path) -> AsyncIterator[Witness]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TL_STATE_DIR": str(folder), "TL_WITNESS_PORT": str(port)}
    await _run("bash", str(SCRIPT), "start", env=env)
    settings = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (folder / "witness.env").read_text().splitlines()
    )
    witness = Witness(settings["TL_WITNESS_URL"], settings["TL_WITNESS_VKEY"], env,
                      folder / "witness" / "litewitness.db")  # fmt: skip
    try:
        yield witness
    finally:
        await witness.stop()


async def _run(*command: str, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, f"{command}: {output.decode()}"
    return output.decode()
