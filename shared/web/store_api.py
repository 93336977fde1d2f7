"""Every command service's read-only view of its own event store, for auditors and
monitors: the store's head, and its events exactly as the relay publishes them.

The projections service compares these with the ledger (``verify``: what is stored but
missing from the ledger; ``reconcile``: every event byte for byte), so that no auditor's
tool needs another service's database or code.

Under ``/studies/<id>`` (``shared.web.service_app``) the same routes answer for that
study alone, to its own auditors: only its events (positions stay the store's, so the
other studies' leave gaps), and a head of its own count, newest event, waiting and
quarantined records beside the store's newest and published positions. The routes
without a prefix are the first study's auditors' and answer the whole store, as ever.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
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


def store_routes(authorisation: Authorisation, outbox: Outbox) -> APIRouter:
    """``GET /store/head`` and ``GET /store/events`` for auditors and monitors (a refusal
    is recorded like any other), as the service's row ``store.read`` in
    ``shared.kernel.permissions`` permits (KeyError at start-up when it has none); the
    service app mounts them as they are and under each study's prefix."""
    authorisation.table.roles(STORE_COMMAND)
    router = APIRouter(tags=["store"])

    @router.get("/store/head")
    async def store_head(
        request: Request, caller: Annotated[Caller, authorised(STORE_COMMAND)]
    ) -> StoreHeadOut:
        """Where this service's event store and its relay stand: the newest position, the
        count and hash of the newest event, what is published, what waits, and what is
        quarantined (under a study: of its own events alone, beside the store's newest
        and published positions)."""
        if (study := _study(request)) is not None:
            return StoreHeadOut.model_validate((await outbox.study_head(study)).to_json())
        return StoreHeadOut.model_validate((await outbox.head()).to_json())

    @router.get("/store/events")
    async def store_events(
        request: Request,
        caller: Annotated[Caller, authorised(STORE_COMMAND)],
        after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        payload: Annotated[bool, Query(description="false: positions and ids only")] = True,
    ) -> StoredEventsOut:
        """Stored events after position ``after``, in log order, as published (under a
        study: its own alone, so a page may hold fewer than ``limit``, or none, before
        ``next_after`` is null)."""
        await outbox.load_form()  # render each record in the form the relay publishes it
        if (study := _study(request)) is not None:
            own, last = await asyncio.to_thread(outbox.study_events, study, after, limit)
            return StoredEventsOut.model_validate(
                {"events": [e.to_json(payload) for e in own], "next_after": last}
            )
        found = await asyncio.to_thread(outbox.events, after, limit, payload)
        events: list[dict[str, Any]] = [e.to_json(payload) for e in found]
        more = len(found) == limit
        return StoredEventsOut.model_validate(
            {"events": events, "next_after": found[-1].position if more else None}
        )

    return router


def _study(request: Request) -> str | None:
    """The study the path names (None: no prefix, the whole store)."""
    named = request.path_params.get("study_id")
    return None if named is None else str(named)
