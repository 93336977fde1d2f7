"""The benchmarks' load generator (``tools/loadgen``, Go): each client's requests in
order, one in flight per client, every one measured by name; an answer other than 200
or 201 fails the run, naming the request (a benchmark never reports a refused command
as a fast one)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import FastAPI, HTTPException

from bench import loadgen
from bench.loadgen import Request


def _app(received: list[tuple[str, str]]) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/subjects", status_code=201)
    async def register(body: dict[str, str]) -> dict[str, str]:
        if body["subject_id"] == "refused":
            raise HTTPException(409, "not_eligible")
        received.append((body["client"], body["subject_id"]))
        return body

    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, list[tuple[str, str]]]]:
    received: list[tuple[str, str]] = []
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.bind(("127.0.0.1", 0))
    listening.listen(100)
    server = uvicorn.Server(uvicorn.Config(_app(received), log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}", received
    finally:
        server.should_exit = True
        await serving


def _client(name: str, subjects: int) -> list[Request]:
    return [Request("health", "/health"), *(
        Request("register", "/subjects", {"client": name, "subject_id": f"{name}-{n}"})
        for n in range(subjects))]  # fmt: skip


async def test_each_client_sends_its_requests_in_order_and_each_is_measured(
    served: tuple[str, list[tuple[str, str]]],
) -> None:
    url, received = served
    measured = await loadgen.drive(url, {}, [_client("A", 5), _client("B", 3)])
    assert {name: len(times) for name, times in measured.by_command.items()} == {
        "health": 2, "register": 8,
    }  # fmt: skip
    assert all(0 < t < measured.seconds for times in measured.by_command.values() for t in times)
    for client, count in (("A", 5), ("B", 3)):
        assert [s for c, s in received if c == client] == [f"{client}-{n}" for n in range(count)]


async def test_a_refused_request_fails_the_run_naming_it(
    served: tuple[str, list[tuple[str, str]]],
) -> None:
    url, _ = served
    refused = [Request("register", "/subjects", {"client": "A", "subject_id": "refused"})]
    with pytest.raises(RuntimeError, match=r"POST /subjects \(register\): 409 .*not_eligible"):
        await loadgen.drive(url, {}, [_client("B", 2), refused])
