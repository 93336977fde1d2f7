"""What a service's background workers report about themselves when metrics are scraped.

A worker (relay, subscriptions, ingester) that implements ``Observed`` is asked for its
``Readings`` at each scrape of ``/metrics``: relay lag in events, the age of the oldest
unpublished event, quarantined events, consumer lag in messages, dead letters kept,
messages consumed. A worker that implements ``Checked`` also answers in ``/ready``.
They are read from where the truth is (the event store, the saved positions, the broker's
offsets), so a standby relay or a restarted process reports the same lag as the active
one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Consumer = str  # a consumer's name in metrics: its Kafka group id


@dataclass(frozen=True)
class Readings:
    """One scrape's figures from one worker; every mapping may be empty."""

    relay_lag: Mapping[str, int] = field(default_factory=dict)  # topic -> events
    consumer_lag: Mapping[tuple[Consumer, str], int] = field(default_factory=dict)  # messages
    dead_letters: Mapping[Consumer, int] = field(default_factory=dict)  # rows kept
    consumed: Mapping[tuple[Consumer, str], int] = field(default_factory=dict)  # by outcome
    relay_oldest_unpublished: Mapping[str, float] = field(default_factory=dict)  # seconds
    relay_quarantined: Mapping[str, int] = field(default_factory=dict)  # topic -> events
    signing_refused: Mapping[Consumer, int] = field(default_factory=dict)  # 1: refused
    # per witness and study ("": the first study's ledger): entries signed but not yet
    # cosigned by it, and 1 while it fails
    witness_uncosigned: Mapping[tuple[str, str], int] = field(default_factory=dict)
    witness_failing: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def merged(self, other: Readings) -> Readings:
        return Readings(
            {**self.relay_lag, **other.relay_lag},
            {**self.consumer_lag, **other.consumer_lag},
            {**self.dead_letters, **other.dead_letters},
            {**self.consumed, **other.consumed},
            {**self.relay_oldest_unpublished, **other.relay_oldest_unpublished},
            {**self.relay_quarantined, **other.relay_quarantined},
            {**self.signing_refused, **other.signing_refused},
            {**self.witness_uncosigned, **other.witness_uncosigned},
            {**self.witness_failing, **other.witness_failing},
        )


class KafkaOffsets:
    """The broker's offsets, for one scrape. Clients open on first use (a service with
    no consumer never connects) and close when the ``async with`` block ends."""

    def __init__(self, bootstrap: str, timeout_ms: int = 3000) -> None:
        self.bootstrap = bootstrap
        self.timeout_ms = timeout_ms
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> KafkaOffsets:
        return self

    async def __aexit__(self, *_: object) -> None:
        # a client may be half-opened (a scrape that timed out): closing must not raise
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.close()

    async def end_offsets(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        """The next offset to be written, for every partition of ``topics``."""
        admin = await self._admin_client()
        described = await admin.describe_topics(sorted(set(topics)))
        partitions = [
            TopicPartition(t["topic"], p["partition"])
            for t in described
            if t["error_code"] == 0
            for p in t["partitions"]
        ]
        if not partitions:
            return {}
        consumer = await self._offsets_consumer()
        ends = await consumer.end_offsets(partitions)
        return {tp: int(offset) for tp, offset in ends.items()}

    async def committed(self, group_id: str) -> dict[TopicPartition, int]:
        """The offsets ``group_id`` committed (partitions it never committed are absent)."""
        admin = await self._admin_client()
        offsets = await admin.list_consumer_group_offsets(group_id)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def _connection(self) -> dict[str, Any]:
        """How both clients reach the broker."""
        return {"bootstrap_servers": self.bootstrap, "request_timeout_ms": self.timeout_ms}

    # Each client is kept before it is started, so that one half-opened is still closed.
    async def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(**self._connection())
            await self._admin.start()
        return self._admin

    async def _offsets_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # no group: it only asks for offsets, it never joins or commits
            self._consumer = AIOKafkaConsumer(**self._connection())
            await self._consumer.start()
        return self._consumer


def lag_by_topic(
    ends: Mapping[TopicPartition, int], positions: Mapping[TopicPartition, int]
) -> dict[str, int]:
    """Messages not yet consumed, per topic: end offset minus the consumer's position,
    summed over partitions (a partition it never read counts from offset 0)."""
    lag: dict[str, int] = {}
    for partition, end in ends.items():
        behind = max(0, end - positions.get(partition, 0))
        lag[partition.topic] = lag.get(partition.topic, 0) + behind
    return lag


@runtime_checkable
class Observed(Protocol):
    """A worker that reports readings when the service's metrics are scraped."""

    async def readings(self, kafka: KafkaOffsets) -> Readings: ...


@runtime_checkable
class Checked(Protocol):
    """A worker whose state decides readiness: ``{check: "ok" | reason}`` (a relay with
    stuck or quarantined events, an ingester that stopped appending)."""

    async def problems(self) -> dict[str, str]: ...
