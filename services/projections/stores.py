"""The command services' event stores, read through their own read-only HTTP API
(``shared.web.store_api``: ``GET /store/head`` and ``GET /store/events``), with the
auditor's own token. The projections service never opens another service's database
or imports its code.

Reading never raises: a service that does not answer, or answers something unexpected,
becomes a ``StoreProblem`` that ``verify`` and ``reconcile`` report as a finding.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from services.projections.reconcile import StoredEvent, StoreEndpoint, StoreReading
from shared.kernel.settings import DEFAULT_PORTS
from shared.study import DEFAULT_STUDY_ID

# The services whose stores feed the ledger (each publishes ``trialledger.<name>.events``).
COMMAND_SERVICES = ("identity", "enrollment", "infusion", "adverse_events", "assessments")
PAGE = 2000


def store_endpoints(env: Mapping[str, str] | None = None) -> list[StoreEndpoint]:
    """Each command service's base URL: ``TL_<SERVICE>_URL``, by default its local port
    (``TL_<SERVICE>_HTTP_PORT``, as ``make up`` runs it)."""
    return [StoreEndpoint(service, service_url(service, env)) for service in COMMAND_SERVICES]


def service_url(service: str, env: Mapping[str, str] | None = None) -> str:
    """Where a service answers: ``TL_<SERVICE>_URL``, by default its local port
    (``TL_<SERVICE>_HTTP_PORT``, as ``make up`` runs it)."""
    env = os.environ if env is None else env
    prefix = f"TL_{service.upper()}"
    port = env.get(f"{prefix}_HTTP_PORT") or DEFAULT_PORTS[service]
    return env.get(f"{prefix}_URL") or f"http://127.0.0.1:{port}"


class StoreReader:
    """Reads the stores' APIs as the auditor whose bearer token it carries."""

    def __init__(
        self,
        endpoints: Sequence[StoreEndpoint],
        token: str,
        timeout: float = 15.0,
        study_id: str | None = None,
    ) -> None:
        """``study_id``: read only that study's events, where the stores hold several
        studies': another study's from the routes under its prefix, which answer its own
        alone (``token`` must be for it); the first study's from the routes without one,
        as ever, which answer every study's, so they are filtered here (``study_of``;
        every event is read with its payload, which names the study)."""
        self.endpoints = list(endpoints)
        self.token = token
        self.timeout = timeout
        self.study_id = study_id
        self.filters = study_id == DEFAULT_STUDY_ID  # the unprefixed routes: every study's
        self.prefix = "" if study_id in (None, DEFAULT_STUDY_ID) else f"/studies/{study_id}"

    async def heads(self) -> list[StoreReading]:
        """Every store's head."""
        async with self._client() as client:
            return [await self._head(client, e) for e in self.endpoints]

    async def events(
        self, reading: StoreReading, payload: bool, positions: Sequence[int] | None = None
    ) -> StoreReading:
        """Fill ``reading.events``: the whole store, or only the events at ``positions``
        (of the reader's study alone, if it reads one)."""
        payload = payload or self.filters
        async with self._client() as client:
            try:
                if positions is None:
                    reading.events = await self._pages(client, reading.endpoint, payload)
                else:
                    reading.events = [
                        event
                        for position in positions
                        for event in await self._page(
                            client, reading.endpoint, position - 1, 1, payload
                        )
                        if event.position == position
                    ]
            except Exception as error:  # a finding, never a traceback
                reading.problem = _why(reading.endpoint, error)
        if self.filters:
            reading.events = [e for e in reading.events if study_of(e) == self.study_id]
        return reading

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"}
        )

    async def _head(self, client: httpx.AsyncClient, endpoint: StoreEndpoint) -> StoreReading:
        reading = StoreReading(endpoint)
        try:
            reading.head = _json(await client.get(f"{endpoint.url}{self.prefix}/store/head"))
        except Exception as error:
            reading.problem = _why(endpoint, error)
        return reading

    async def _pages(
        self, client: httpx.AsyncClient, endpoint: StoreEndpoint, payload: bool
    ) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        after: int | None = 0
        while after is not None:
            page = _json(
                await client.get(
                    f"{endpoint.url}{self.prefix}/store/events",
                    params={"after": after, "limit": PAGE, "payload": str(payload).lower()},
                )
            )
            found.extend(StoredEvent.from_json(e) for e in page["events"])
            after = page["next_after"]
        return found

    async def _page(
        self,
        client: httpx.AsyncClient,
        endpoint: StoreEndpoint,
        after: int,
        limit: int,
        payload: bool,
    ) -> list[StoredEvent]:
        page = _json(
            await client.get(
                f"{endpoint.url}{self.prefix}/store/events",
                params={"after": after, "limit": limit, "payload": str(payload).lower()},
            )
        )
        return [StoredEvent.from_json(e) for e in page["events"]]


def study_of(event: StoredEvent) -> str:
    """The study of a stored event: its published record's ``studyid`` (none: the first
    study's); an event that cannot be published is counted as the first study's, whose
    ledger also keeps the dead letters no study claims."""
    if event.payload is None:
        return DEFAULT_STUDY_ID
    try:
        named = json.loads(event.payload).get("studyid")
    except (ValueError, AttributeError):
        return DEFAULT_STUDY_ID
    return named if isinstance(named, str) else DEFAULT_STUDY_ID


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise StoreAnswered(f"answered {response.status_code}: {response.text[:300]}")
    return response.json()


class StoreAnswered(Exception):
    """The store's API answered, but not with what was asked."""


def _why(endpoint: StoreEndpoint, error: Exception) -> str:
    return f"{endpoint.service} store at {endpoint.url}: {type(error).__name__}: {error}"[:500]
