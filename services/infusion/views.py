"""The infusion service's local view of enrolment, built from the enrollment topic.

Kept in the infusion database, so it survives a restart; applying an event is idempotent
(an event is applied only if its record version is newer than the view's), so
redelivery after a restart changes nothing. A record that is not a readable enrollment
event goes to ``view_dead_letters`` and the subscription goes on.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from services.infusion.domain import Enrolment
from shared.envelope import CloudEvent
from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)
GROUP_ID = "trialledger-infusion-enrolment-view"

# enrollment event type -> the status it leaves the subject in
STATUS = {
    "SubjectRegistered.v1": "registered",
    "ConsentSigned.v1": "consented",
    "ScreeningResultRecorded.v1": "screened",
    "EligibilityConfirmed.v1": "eligible",
    "ScreenFailed.v1": "screen_failed",
    "SubjectEnrolled.v1": "enrolled",
    "SubjectWithdrawn.v1": "withdrawn",
}

VIEW_SQL = """
CREATE TABLE IF NOT EXISTS enrolment_view (
    subject_id text PRIMARY KEY,
    status text NOT NULL,
    dose_level integer,
    record_version integer NOT NULL,
    event_id uuid NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS view_dead_letters (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    record_value bytea,
    reason text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
"""


class EnrolmentView:
    """Who is enrolled, at which dose level, and who was withdrawn."""

    def __init__(self, database: DatabaseSettings) -> None:
        self.database = database
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.database.dsn,
            min_size=1,
            max_size=4,
            server_settings={"search_path": f'"{self.database.schema}"'},
        )
        await self.pool.execute(VIEW_SQL)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("EnrolmentView.open() was not called")
        return self._pool

    async def enrolment(self, subject_id: str) -> Enrolment:
        row = await self.pool.fetchrow(
            "SELECT status, dose_level FROM enrolment_view WHERE subject_id = $1", subject_id
        )
        return Enrolment("unknown", None) if row is None else Enrolment(row[0], row[1])

    async def apply(self, value: bytes | None, topic: str, partition: int, offset: int) -> bool:
        """Apply one enrollment record; False if it went to the dead letters."""
        try:
            event = CloudEvent.from_kafka_value(value or b"")
        except (ValidationError, ValueError) as error:
            await self._dead_letter(value, topic, partition, offset, f"unreadable: {error}"[:500])
            return False
        status = STATUS.get(event.type)
        if status is None or event.subject is None:
            return True  # not about enrolment (signatures, corrections, denials)
        await self.pool.execute(
            "INSERT INTO enrolment_view (subject_id, status, dose_level, record_version, event_id) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_id) DO UPDATE SET "
            "status = EXCLUDED.status, "
            "dose_level = coalesce(EXCLUDED.dose_level, enrolment_view.dose_level), "
            "record_version = EXCLUDED.record_version, event_id = EXCLUDED.event_id, "
            "updated_at = now() WHERE enrolment_view.record_version < EXCLUDED.record_version",
            event.subject,
            status,
            event.data.get("dose_level"),
            int(event.data["version"]),
            event.id,
        )
        return True

    async def _dead_letter(
        self, value: bytes | None, topic: str, partition: int, offset: int, reason: str
    ) -> None:
        log.warning("view dead letter topic=%s offset=%s reason=%s", topic, offset, reason)
        await self.pool.execute(
            "INSERT INTO view_dead_letters (topic, kafka_partition, kafka_offset, record_value, "
            "reason) VALUES ($1, $2, $3, $4, $5)",
            topic, partition, offset, value, reason,
        )  # fmt: skip


def create_subscriptions(bootstrap: str, enrollment_topic: str, view: EnrolmentView) -> KafkaBroker:
    """The faststream broker that keeps the view. At least once: the offset is committed
    after the handler; a database failure nacks, and the record comes again."""
    broker = KafkaBroker(bootstrap)

    @broker.subscriber(
        enrollment_topic,
        group_id=GROUP_ID,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_enrollment_event(message: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = message.raw_message  # one record: batch=False
        await view.apply(record.value, record.topic, record.partition, record.offset)

    return broker


class Subscriptions:
    """Runs a faststream broker beside the HTTP server until ``stopping`` is set."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def run(self, stopping: asyncio.Event) -> None:
        await self.broker.start()
        try:
            await stopping.wait()
        finally:
            await self.broker.stop()
