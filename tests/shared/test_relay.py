"""The relay against the real PostgreSQL and the real Kafka broker.

Stopping the relay mid-stream, and separately the broker, loses nothing: every
committed event arrives, duplicates carry the same event id, and each subject's
events keep their order.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION, to_contract
from shared.adapters.outbox import Outbox, published_position
from shared.adapters.relay import Relay, RelayOptions
from shared.kernel.envelope import CloudEvent
from shared.kernel.provenance import Meaning
from shared.kernel.settings import ServiceSettings
from tests.support import Running, command, consent, eventually, read_topic, screening, signing

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]
INFRA = Path(__file__).resolve().parents[2] / "deploy" / "local" / "infra.sh"
SUBJECTS = ("S-101", "S-102", "S-103")


def make_relay(settings: ServiceSettings, app: EnrollmentApplication) -> Relay:
    # Small batches, so that a stop lands between batches as well as inside one; a short
    # request timeout, so that a broker outage of a few seconds exceeds it.
    options = RelayOptions(
        batch_size=4, poll_interval=0.2, max_backoff=1.0, request_timeout_ms=2000
    )
    return Relay(Outbox.of(app, PUBLICATION, settings), settings.kafka_bootstrap, options)


@pytest.fixture
async def relays() -> AsyncIterator[list[Running]]:
    running: list[Running] = []
    yield running
    for r in running:
        await r.crash()


def write_history(app: EnrollmentApplication, subjects: tuple[str, ...]) -> None:
    """Six events per subject (two of them signatures), interleaved across subjects."""
    for subject in subjects:
        app.register_subject(subject, "ZJU-1", command())
    for subject in subjects:
        app.sign_consent(subject, consent(), command(), signing(Meaning.RESPONSIBILITY))
    for subject in subjects:
        app.record_screening(subject, screening(), command())
    for subject in subjects:
        app.decide_eligibility(subject, command(), signing(Meaning.APPROVAL))


def committed_ids(app: EnrollmentApplication) -> list[str]:
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    return [str(to_contract(app.mapper.to_domain_event(n)).event_id) for n in notifications]


async def position(settings: ServiceSettings) -> int:
    return await published_position(settings.database, settings.topic)


def check_delivery(app: EnrollmentApplication, records: list[ConsumerRecord[bytes, bytes]]) -> None:
    """Every committed event exactly once after dedup, duplicates identical, order per subject."""
    first_seen: dict[str, bytes] = {}
    versions: dict[str, list[int]] = {}
    for record in records:
        event = CloudEvent.from_kafka_value(record.value)
        assert record.key == event.kafka_key()
        key = str(event.id)
        if key in first_seen:
            assert first_seen[key] == record.value, "a duplicate must be the same event"
            continue
        first_seen[key] = record.value
        versions.setdefault(str(event.subject), []).append(event.data["version"])
    assert sorted(first_seen) == sorted(committed_ids(app))
    for subject, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{subject} out of order: {seen}"


async def test_publishes_every_committed_event_keyed_by_subject(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    write_history(application, SUBJECTS)
    relays.append(Running(make_relay(settings, application)))
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=18)
    check_delivery(application, records)
    assert len(records) == 18


async def test_relay_stopped_mid_stream_resumes_without_loss(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    write_history(application, SUBJECTS)
    first = Running(make_relay(settings, application))
    relays.append(first)

    async def some_published() -> bool:
        return await position(settings) >= 4

    await eventually(some_published, what="first batches published")
    await first.crash()
    write_history(application, ("S-104", "S-105"))  # committed while no relay runs
    assert await position(settings) < (application.recorder.max_notification_id() or 0)

    second = Running(make_relay(settings, application))
    relays.append(second)
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=30, distinct=True)
    check_delivery(application, records)
    await second.stop()


async def test_second_relay_stands_by_while_the_first_holds_the_topic(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    write_history(application, ("S-106",))
    relays.append(Running(make_relay(settings, application)))
    await eventually(lambda: _position_at_least(settings, 6), what="first relay published")
    standby = make_relay(settings, application)
    relays.append(Running(standby))
    application.withdraw("S-106", "moved away", command())
    await eventually(lambda: _position_at_least(settings, 7), what="withdrawal published")
    assert standby.position == 0  # it never took the topic
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=7)
    assert len(records) == 7


async def _position_at_least(settings: ServiceSettings, least: int) -> bool:
    return await position(settings) >= least


async def test_relay_publishes_while_every_worker_thread_is_busy(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    """A busy service's commands hold every thread of the default executor (and queue
    behind them): the relay and the head (readiness) read the store in the outbox's own
    thread, so publishing goes on under the load it follows, rather than after it."""
    write_history(application, SUBJECTS)
    released = threading.Event()
    # more blocked calls than the default executor has threads (at most 32): all busy,
    # the rest queued, as a command service's threads are at its saturation
    busy = [asyncio.create_task(asyncio.to_thread(released.wait, 60)) for _ in range(40)]
    try:
        relay = make_relay(settings, application)
        relays.append(Running(relay))
        records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=18)
        check_delivery(application, records)
        head = await relay.outbox.head()
        assert (head.position, head.published_position) == (18, 18)
        assert not any(task.done() for task in busy)  # the threads were busy throughout
    finally:
        released.set()
        await asyncio.gather(*busy)


async def test_readiness_reads_do_not_grow_with_the_store(
    settings: ServiceSettings, application: EnrollmentApplication
) -> None:
    """Readiness and the relay's metrics are read every few seconds: they read the
    backlog by index (the newest position, what waits after the published one, what is
    held), not the whole store. Measured by PostgreSQL's own counters of the rows and
    index entries read from the events table; a count of the whole store reads all of
    them on every probe."""
    write_history(application, SUBJECTS)
    relay = make_relay(settings, application)
    outbox, probes = relay.outbox, 20
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        # a store of some thousands of events, as the planner sees a real one (copies of
        # the written ones under new subjects: the probes decode none of them)
        await connection.execute(
            outbox.sql(
                "INSERT INTO {events} (originator_id, originator_version, topic, state) "
                "SELECT gen_random_uuid(), originator_version, topic, state "
                "FROM {events}, generate_series(1, 200)"
            )
        )
        await connection.execute(outbox.sql("ANALYZE {events}"))
        stored, newest = await connection.fetchrow(
            outbox.sql("SELECT count(*), max(notification_id) FROM {events}")
        )
        await outbox.create_tables(connection)
        await outbox.save(connection, newest)  # all published: nothing waits
        before = await _rows_read(connection, outbox)
        for _ in range(probes):
            assert await relay.problems() == {"relay": "ok"}
        # each probe's connection reports its counters as it ends: wait for all of them
        # (a probe scans the table twice, old code and new: its newest position, and the
        # count of what waits), or a regression's reads could be only half counted
        await eventually(
            lambda: _scanned_since(connection, outbox, before, 2 * probes), what="counters"
        )
        read = (await _rows_read(connection, outbox))[1] - before[1]
    finally:
        await connection.close()
    assert read < probes * stored / 2, f"{probes} probes read {read} of {stored} events"


async def _rows_read(connection: asyncpg.Connection, outbox: Outbox) -> tuple[int, int]:
    """Scans of the events table, and its rows and index entries read, so far."""
    row = await connection.fetchrow(
        "SELECT t.seq_scan + coalesce(t.idx_scan, 0) AS scans, t.seq_tup_read + "
        "coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i "
        "WHERE i.relid = t.relid), 0) AS rows FROM pg_stat_user_tables t "
        "WHERE t.relid = $1::regclass",
        outbox.sql("{events}"),
    )
    return int(row["scans"]), int(row["rows"])


async def _scanned_since(
    connection: asyncpg.Connection, outbox: Outbox, before: tuple[int, int], scans: int
) -> bool:
    return (await _rows_read(connection, outbox))[0] - before[0] >= scans


@pytest.mark.faults
async def test_broker_outage_while_publishing_delays_but_loses_nothing(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    write_history(application, SUBJECTS[:1])
    relays.append(Running(make_relay(settings, application)))
    await eventually(lambda: _position_at_least(settings, 6), what="published before outage")
    await _infra("stop", "kafka")
    try:
        write_history(application, ("S-107", "S-108"))  # committed while the broker is down
        assert await position(settings) == 6  # nothing counts as sent without the broker's ack
    finally:
        await _infra("start", "kafka")
    records = await read_topic(
        settings.kafka_bootstrap, settings.topic, expected=18, timeout=120, distinct=True
    )
    check_delivery(application, records)


@pytest.mark.faults
async def test_relay_started_during_broker_outage_retries_until_it_is_back(
    settings: ServiceSettings,
    application: EnrollmentApplication,
    relays: list[Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _infra("stop", "kafka")
    try:
        relays.append(Running(make_relay(settings, application)))
        write_history(application, SUBJECTS[:2])
        await eventually(lambda: _relay_interrupted(caplog), what="relay met the outage")
    finally:
        await _infra("start", "kafka")
    records = await read_topic(
        settings.kafka_bootstrap, settings.topic, expected=12, timeout=120, distinct=True
    )
    check_delivery(application, records)


async def _relay_interrupted(caplog: pytest.LogCaptureFixture) -> bool:
    return any(r.getMessage().startswith("relay interrupted") for r in caplog.records)


async def _infra(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash", str(INFRA), *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


async def test_a_store_published_in_the_first_form_keeps_it_and_takes_the_compact_form_after(
    settings: ServiceSettings,
    application: EnrollmentApplication,
    relays: list[Running],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upgrade: a relay of before the cutover (it never decides the form) published
    the first events with null attributes; after it, the next relay keeps those bytes on
    every re-publication and the store's API, and publishes the new events compact."""
    write_history(application, ("S-101",))
    with monkeypatch.context() as before_the_cutover:
        before_the_cutover.setattr(Outbox, "decide_form", lambda *args, **kwargs: _nothing())
        first = Running(make_relay(settings, application))
        relays.append(first)
        old = await read_topic(settings.kafka_bootstrap, settings.topic, expected=6)
        await first.stop()
    assert all(b'"causationid":null' in r.value and b"dataschema" not in r.value for r in old)

    relays.append(Running(make_relay(settings, application)))
    await eventually(lambda: _decided(settings, application), what="the cutover decided")
    write_history(application, ("S-102",))
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=12)
    check_delivery(application, records)
    new = [json.loads(r.value) for r in records if r.value not in {o.value for o in old}]
    assert [e["subject"] for e in new] == ["S-102"] * 6
    assert all("causationid" not in e and e["dataschema"].endswith(e["type"]) for e in new)

    outbox = Outbox.of(application, PUBLICATION, settings)
    await outbox.load_form()
    assert outbox.compact_from == 7
    stored = await asyncio.to_thread(outbox.events, 0, 100)
    assert {s.value for s in stored} == {r.value for r in records}


async def test_events_stored_before_any_relay_ran_are_published_compact(
    settings: ServiceSettings, application: EnrollmentApplication, relays: list[Running]
) -> None:
    """A new store (the first administrator is made before the services start): nothing
    was ever published, so every record takes the compact form."""
    write_history(application, ("S-101",))
    relays.append(Running(make_relay(settings, application)))
    records = await read_topic(settings.kafka_bootstrap, settings.topic, expected=6)
    assert all(json.loads(r.value)["dataschema"] for r in records)
    assert await _decided(settings, application)


async def _nothing() -> None:
    return None


async def _decided(settings: ServiceSettings, application: EnrollmentApplication) -> bool:
    outbox = Outbox.of(application, PUBLICATION, settings)
    await outbox.load_form()
    return outbox.compact_from is not None
