"""Every command service's read-only view of its own event store, for auditors and
monitors: the store's head, and its events exactly as the relay publishes them.

The projections service compares these with the ledger (``verify``: what is stored but
missing from the ledger; ``reconcile``: every event byte for byte), so that no auditor's
tool needs another service's database or code.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from shared.adapters.outbox import Outbox
from shared.kernel.permissions import STORE_COMMAND
from shared.web.http import Authorisation, Caller, authorised

MAX_POSITION = 2**63 - 1  # notification ids are PostgreSQL bigints


class QuarantinedOut(BaseModel):
    position: int = Field(description="the event's position in the store's log")
    event_id: str
    event_type: str
    key: str = Field(description="its Kafka key")
    reason: str = Field(description="why it is not published")
    held_behind: int | None = Field(
        description="held behind this earlier quarantined position of the same key; "
        "null: it failed itself"
    )
    quarantined_at: str
    attempts: int


class StoredEventOut(BaseModel):
    position: int = Field(description="the notification id in the store's log")
    event_id: str
    record_id: str
    record_version: int
    event_type: str | None = None
    key: str | None = Field(None, description="the Kafka key it is published under")
    recorded_at: str | None = None
    payload: str | None = Field(
        None, description="the CloudEvent exactly as the relay publishes it (JSON text)"
    )
    problem: str | None = Field(None, description="why it cannot be published, if it cannot")


class StoreHeadOut(BaseModel):
    service: str
    topic: str
    position: int = Field(description="the newest notification id (0: empty store)")
    count: int = Field(description="events stored")
    last_event_id: str | None
    last_event_hash: str | None = Field(
        description="SHA-256 (hex) of the newest event's published bytes"
    )
    published_position: int = Field(description="the relay is done up to here")
    unpublished: int = Field(description="events stored after the published position")
    oldest_unpublished: StoredEventOut | None
    oldest_unpublished_age_seconds: float | None
    quarantined: list[QuarantinedOut]
    read_at: str


class StoredEventsOut(BaseModel):
    events: list[StoredEventOut]
    next_after: int | None = Field(description="give as `after` for the next page; null: done")


def add_store_routes(app: FastAPI, authorisation: Authorisation, outbox: Outbox) -> None:
    """``GET /store/head`` and ``GET /store/events`` for auditors and monitors (a refusal
    is recorded like any other), as the service's row ``store.read`` in
    ``shared.kernel.permissions`` permits (KeyError at start-up when it has none)."""
    authorisation.table.roles(STORE_COMMAND)

    @app.get("/store/head", tags=["store"])
    async def store_head(caller: Annotated[Caller, authorised(STORE_COMMAND)]) -> StoreHeadOut:
        """Where this service's event store and its relay stand: the newest position, the
        count and hash of the newest event, what is published, what waits, and what is
        quarantined."""
        return StoreHeadOut.model_validate((await outbox.head()).to_json())

    @app.get("/store/events", tags=["store"])
    async def store_events(
        caller: Annotated[Caller, authorised(STORE_COMMAND)],
        after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        payload: Annotated[bool, Query(description="false: positions and ids only")] = True,
    ) -> StoredEventsOut:
        """Stored events after position ``after``, in log order, as published."""
        await outbox.load_form()  # render each record in the form the relay publishes it
        found = await asyncio.to_thread(outbox.events, after, limit, payload)
        events: list[dict[str, Any]] = [e.to_json(payload) for e in found]
        more = len(found) == limit
        return StoredEventsOut.model_validate(
            {"events": events, "next_after": found[-1].position if more else None}
        )
