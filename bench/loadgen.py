"""The benchmarks' HTTP clients: ``tools/loadgen`` (Go, standard library only), built here
with the machine's Go toolchain into ``.cache/bin`` and given the requests as a plan.

Closed loop: each client sends its requests in order, the next when the last is answered,
so ``N`` clients keep at most ``N`` requests in flight. Why not Python: an httpx client
spent 2-3 ms of CPU per request on the two cores it shared with the server it measured,
and was most of what it reported (GET /health at 20 clients: 340 requests/s and p99
240 ms through httpx; 2,800/s and p99 14 ms through a Go client; docs/performance.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tools" / "loadgen"
BINARY = ROOT / ".cache" / "bin" / "loadgen"


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a client: its name in the report, path and JSON body (None: a GET)."""

    name: str
    path: str
    body: dict[str, Any] | None = None

    def planned(self) -> dict[str, Any]:
        method = "GET" if self.body is None else "POST"
        return {"name": self.name, "method": method, "path": self.path, "body": self.body}


@dataclass
class Latencies:
    """Seconds each request took, by name, and the wall time of the whole run."""

    by_command: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, started: float) -> None:
        self.by_command.setdefault(name, []).append(time.perf_counter() - started)

    @property
    def count(self) -> int:
        return sum(len(times) for times in self.by_command.values())


@functools.cache
def built() -> Path:
    """The load generator, built from ``tools/loadgen`` once a process."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the Go toolchain is needed to build tools/loadgen")
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    build = [go, "build", "-o", str(BINARY), "."]
    subprocess.run(build, cwd=SOURCE, check=True, timeout=600)  # noqa: S603 (our own tool)
    return BINARY


async def drive(url: str, headers: dict[str, str], clients: list[list[Request]]) -> Latencies:
    """Every client's requests through HTTP at once, by the load generator; an answer
    other than 200 or 201 fails the run, naming the request."""
    plan = {"url": url, "headers": headers,
            "clients": [[request.planned() for request in own] for own in clients]}  # fmt: skip
    binary = await asyncio.to_thread(built)
    process = await asyncio.create_subprocess_exec(
        str(binary), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(json.dumps(plan).encode())
    if process.returncode != 0:
        raise RuntimeError(err.decode().strip())
    report = json.loads(out)
    return Latencies(report["latencies"], report["seconds"])
