"""A downstream consumer of one Trial Ledger topic: plain aiokafka, deduplication by event
id, and its own offsets, kept in SQLite in the same transaction as the dedup record.

Usage: python consumer.py 127.0.0.1:19092 trialledger.enrollment.events consumer.db
"""

import asyncio
import json
import sqlite3
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition

TABLES = """CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS offsets (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);"""


def handle(db: sqlite3.Connection, event: dict[str, object]) -> None:
    """Your work goes here: once per event id, inside the transaction (write with ``db``)."""
    print("handled", event["id"], event["type"], event["subject"], flush=True)


async def consume(bootstrap: str, topic: str, path: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(TABLES)
    # No group id: it reads every partition and keeps its offsets itself (first run: all).
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        for partition, next_offset in db.execute("SELECT partition, next FROM offsets"):
            consumer.seek(TopicPartition(topic, partition), next_offset)
        async for record in consumer:
            event = json.loads(record.value)
            with db:  # one transaction: the work, its dedup record and the next offset
                if db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (event["id"],)).rowcount:
                    handle(db, event)
                else:
                    print("skipped duplicate", event["id"], flush=True)
                db.execute(
                    "INSERT OR REPLACE INTO offsets VALUES (?, ?)",
                    (record.partition, record.offset + 1),
                )
    finally:
        await consumer.stop()
        db.close()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:4]))
