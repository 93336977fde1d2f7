"""HTTP as the demo's users speak it: one client per service, one logged-in session per
user, electronic signatures by re-authentication, and patience where the services are
eventually consistent (a local view that has not yet read an upstream event answers a
409 with a stable code; the demo asks again, as a site's client would)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

CLIENT_ID = "trial-ledger-demo"
SERVICES = ("identity", "enrollment", "infusion", "adverse_events", "assessments", "projections")
RENEW_BEFORE = timedelta(seconds=60)  # log in again when the token has less left than this
POLL_SECONDS = 0.25
Body = dict[str, Any] | Callable[[], Awaitable[dict[str, Any]]]


# Idle connections are dropped before uvicorn's 5 s keep-alive closes them: a request
# sent on one the server is closing at that moment fails with a ReadError.
KEEP_ALIVE = httpx.Limits(keepalive_expiry=2.0)


class DemoError(RuntimeError):
    """A step the services refused, or a wait that did not end; names the step."""


@dataclass(frozen=True)
class Credentials:
    user_id: str
    password: str


class Api:
    """One HTTP client per service; ``patience`` bounds every wait, in seconds."""

    def __init__(self, urls: Mapping[str, str], patience: float = 60.0) -> None:
        missing = [name for name in SERVICES if name not in urls]
        if missing:
            raise DemoError(f"no URL for {', '.join(missing)}")
        headers = {"X-Client-Id": CLIENT_ID}
        self.clients = {
            name: httpx.AsyncClient(
                base_url=urls[name], timeout=30.0, headers=headers, limits=KEEP_ALIVE
            )
            for name in SERVICES
        }
        self.patience = patience

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, patience: float) -> None:
    """Ask ``check`` until it holds; a DemoError naming ``what`` after ``patience`` s."""
    deadline = time.monotonic() + patience
    while not await check():
        if time.monotonic() > deadline:
            raise DemoError(f"waited {patience:.0f} s for {what}")
        await asyncio.sleep(POLL_SECONDS)


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class Session:
    """One user logged in at the identity service: every request carries their token
    (renewed before it expires), every signature re-authenticates them."""

    def __init__(self, api: Api, credentials: Credentials) -> None:
        self.api = api
        self.credentials = credentials
        self.user_id = credentials.user_id
        self._token = ""
        self._expires = datetime.min.replace(tzinfo=UTC)
        self._signed = False  # the first signing of a login session names the user id

    async def log_in(self) -> None:
        body = {"user_id": self.user_id, "password": self.credentials.password}
        response = await self.api.clients["identity"].post("/login", json=body)
        if response.status_code != 200:
            raise DemoError(f"{self.user_id} could not log in: {response.status_code} "
                            f"{response.text}")  # fmt: skip
        answer = response.json()
        self._token, self._signed = answer["access_token"], False
        self._expires = datetime.fromisoformat(answer["expires_at"])

    async def log_out(self) -> None:
        await self.send("POST", "identity", "/logout", expect=(204,))

    async def headers(self, correlation: str | None) -> dict[str, str]:
        if datetime.now(UTC) > self._expires - RENEW_BEFORE:
            await self.log_in()
        headers = {"Authorization": f"Bearer {self._token}"}
        if correlation:
            headers["X-Correlation-Id"] = correlation
        return headers

    async def send(
        self,
        method: str,
        service: str,
        path: str,
        body: Body | None = None,
        *,
        expect: tuple[int, ...] = (200, 201),
        retry: frozenset[str] = frozenset(),
        params: dict[str, Any] | None = None,
        correlation: str | None = None,
    ) -> Any:
        """The JSON answer of a request that must answer ``expect``. A 409 whose code is
        in ``retry`` (a local view not caught up yet) is asked again, with a fresh body
        when ``body`` is a function (a new signature), until the API's patience ends."""
        deadline = time.monotonic() + self.api.patience
        while True:
            payload = await body() if callable(body) else body
            response = await self.api.clients[service].request(
                method, path, json=payload, params=params,
                headers=await self.headers(correlation),
            )  # fmt: skip
            if response.status_code in expect:
                return response.json() if response.content else None
            if _code(response) not in retry or time.monotonic() > deadline:
                raise DemoError(f"{self.user_id}: {method} {service}{path} answered "
                                f"{response.status_code}: {response.text}")  # fmt: skip
            await asyncio.sleep(POLL_SECONDS)

    async def post(self, service: str, path: str, body: Body, **options: Any) -> Any:
        return await self.send("POST", service, path, body, **options)

    async def get(self, service: str, path: str, **options: Any) -> Any:
        return await self.send("GET", service, path, expect=(200,), **options)

    async def sign(self, meaning: str, purpose: str) -> dict[str, str]:
        """A signing assertion for one step: the password again (and the user id on the
        first signing of the session, or after the identity service's idle timeout)."""
        body: dict[str, Any] = {"meaning": meaning, "purpose": purpose,
                                "password": self.credentials.password}  # fmt: skip
        for with_id in (not self._signed, True):
            headers = await self.headers(None)
            answer = await self.api.clients["identity"].post(
                "/signing", json={**body, "user_id": self.user_id if with_id else None},
                headers=headers,
            )  # fmt: skip
            if answer.status_code == 200:
                self._signed = True
                return {"assertion": answer.json()["assertion"]}
            if _code(answer) != "user_id_required":
                break
        raise DemoError(f"{self.user_id} could not sign {purpose}: {answer.status_code} "
                        f"{answer.text}")  # fmt: skip

    def signed(self, meaning: str, purpose: str, body: dict[str, Any]) -> Body:
        """``body`` with a fresh signature each time it is sent."""

        async def make() -> dict[str, Any]:
            return {**body, "signature": await self.sign(meaning, purpose)}

        return make
