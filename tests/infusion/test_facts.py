"""The cohort check (how many subjects the open cohort has dosed) reads the facts kept as
infusions are saved (``shared.adapters.facts``), not the event store: on a store of
100,000 real events it reads the cohort's rows and no others, whichever process of the
service saved them, and a store from before the fact table is read once at start.

Rows read are counted from PostgreSQL's own plan of the check's statement (EXPLAIN
ANALYZE), never timed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from psycopg.sql import SQL, Identifier

from services.infusion import errors
from services.infusion.application import InfusionApplication
from services.infusion.domain import INFUSION_SIGNATURE, Enrollment, Leukapheresis
from shared.adapters.facts import PostgresFactRecorder
from shared.clinical import CohortOpening
from shared.kernel.settings import ServiceSettings
from tests.infusion.test_domain import (
    COHORT,
    ENROLLED,
    RULES,
    begun,
    cmd,
    depleted,
    infusion,
    regimen,
    release,
)
from tests.support import command, on_postgres, signing

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]

STORE = 100_000
INFUSIONS = 2_000
FIRST_RECORDED = datetime(2026, 1, 1, tzinfo=UTC)
LEVEL_1 = Enrollment("enrolled", 1)


def infusions(count: int) -> list[Any]:
    """``count`` real infusion events of as many subjects, at levels 1-4 in turn, recorded
    a minute apart."""
    treatment = depleted()
    treatment.infuse(ENROLLED, infusion(), RULES, cmd(), COHORT, 0)
    real: Any = treatment.pending_events[-1]  # a CarTInfused (a frozen dataclass)
    return [
        dataclasses.replace(
            real, originator_id=uuid4(), subject_id=f"S-{n:06d}", dose_level=1 + n % 4,
            timestamp=FIRST_RECORDED + timedelta(minutes=n), cohort_place=f"{n}/1",
        )
        for n in range(count)
    ]  # fmt: skip


def fill(application: InfusionApplication, events: list[Any], others: int) -> None:
    """Save ``events`` through the application (their facts with them), then COPY
    ``others`` real leukapheresis events (they establish no fact) into the store, each
    of a record of its own: as fast as PostgreSQL takes them."""
    for start in range(0, len(events), 500):
        application.save(*events[start : start + 500])
    stored = application.mapper.to_stored_event(begun().pending_events[0])
    recorder: Any = application.recorder
    table = Identifier(recorder.datastore.schema, recorder.events_table_name)
    columns = SQL("COPY {0} (originator_id, originator_version, topic, state) FROM STDIN")
    with (
        recorder.datastore.transaction(commit=True) as curs,
        curs.copy(columns.format(table)) as copy,
    ):
        for _ in range(others):
            copy.write_row((uuid4(), 1, stored.topic, stored.state))


def plan(recorder: PostgresFactRecorder, cohort: CohortOpening) -> dict[str, Any]:
    """PostgreSQL's plan of the check's own statement, as it ran (EXPLAIN ANALYZE)."""
    statement, parameters = recorder.count_statement("infused", str(cohort.level), cohort.opened_at)
    with recorder.datastore.get_connection() as connection, connection.cursor() as curs:
        facts = Identifier(recorder.datastore.schema, recorder.facts_table)
        curs.execute(SQL("ANALYZE {0}").format(facts))  # statistics of the table as filled
        explain = SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + statement
        curs.execute(explain, parameters)
        row = curs.fetchone()
        assert row is not None
        result: dict[str, Any] = row["QUERY PLAN"][0]["Plan"]
        return result


def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Scan" in node["Node Type"]:
        yield node
    for child in node.get("Plans", []):
        yield from scans(child)


def test_a_cohort_check_on_a_store_of_100000_events_reads_only_the_cohorts_rows(
    application: InfusionApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = infusions(INFUSIONS)
    fill(application, events, STORE - INFUSIONS)
    assert application.recorder.max_notification_id() == STORE
    cohort = CohortOpening(3, 3, FIRST_RECORDED + timedelta(minutes=INFUSIONS - 10), 2)
    dosed = [e for e in events if e.dose_level == 3 and e.timestamp > cohort.opened_at]
    assert len(dosed) == 2

    def no_rescan(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cohort check read the event store")

    monkeypatch.setattr(application.recorder, "select_notifications", no_rescan)
    monkeypatch.setattr(application.recorder, "select_events", no_rescan)
    assert application.dosed_since(cohort) == len(dosed)
    monkeypatch.undo()

    read = list(scans(plan(application.recorder, cohort)))  # type: ignore[arg-type]
    # the table's own scan, or its index's (a bitmap scan names the index, not the table)
    facts = {"infusion_events_facts", "infusion_events_facts_group_idx"}
    assert {node.get("Relation Name") or node["Index Name"] for node in read} <= facts
    assert all(node["Node Type"] != "Seq Scan" for node in read), read
    assert all(node["Actual Rows"] + node.get("Rows Removed by Filter", 0) <= 2 for node in read)


def test_two_processes_of_the_service_count_each_others_infusions(
    application: InfusionApplication, settings: ServiceSettings
) -> None:
    first, second = infusions(2)
    with on_postgres(InfusionApplication, settings) as other:
        application.save(first)
        other.save(second)
        cohort = CohortOpening(1, 3, FIRST_RECORDED - timedelta(days=1), 0)
        assert application.dosed_since(cohort) == other.dosed_since(cohort) == 1  # level 1
        level_2 = dataclasses.replace(cohort, level=2)
        assert application.dosed_since(level_2) == other.dosed_since(level_2) == 1


def test_infusions_stored_before_the_fact_table_are_counted_from_the_next_start(
    application: InfusionApplication, settings: ServiceSettings
) -> None:
    before = [application.mapper.to_stored_event(e) for e in infusions(8)]
    application.recorder.insert_events(before)  # as a process without facts saved them
    recorder: Any = application.recorder
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(SQL("DROP TABLE {0}").format(
            Identifier(recorder.datastore.schema, recorder.facts_table)))  # fmt: skip
    cohort = CohortOpening(1, 3, FIRST_RECORDED - timedelta(days=1), 0)

    with on_postgres(InfusionApplication, settings) as restarted:
        assert restarted.dosed_since(cohort) == 2  # subjects 0 and 4 were dosed at level 1
        restarted.save(*infusions(12)[8:])  # subjects 8-11: 8 at level 1
        assert restarted.dosed_since(cohort) == 3
    with on_postgres(InfusionApplication, settings) as again:  # built once: not read again
        assert again.dosed_since(cohort) == 3


def ready(application: InfusionApplication, subject_id: str) -> None:
    """A subject at level 1, apheresed, its product released, lymphodepleted."""
    apheresis = Leukapheresis(date(2026, 11, 1), Decimal(180))
    application.record_leukapheresis(subject_id, LEVEL_1, apheresis, command())
    application.release_product(subject_id, LEVEL_1, release(), command())
    application.record_lymphodepletion(subject_id, LEVEL_1, regimen(), command())


def test_two_infusions_counted_at_one_moment_never_overfill_their_cohort(
    application: InfusionApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_place = CohortOpening(1, 1, FIRST_RECORDED, 1)  # a review opened level 1 for one
    dose = infusion(cells="70000000")  # 1.0 x10^6 cells/kg at 70 kg: level 1
    for subject in ("S-A", "S-B"):
        ready(application, subject)
    application.infuse("S-A", LEVEL_1, dose, command(), signing(INFUSION_SIGNATURE), one_place)
    counted = application.dosed_since
    counts: list[int] = []

    def as_if_before_s_a(cohort: CohortOpening, study_id: str) -> int:
        """S-B's first count is the one it would have made before S-A's save committed."""
        counts.append(0 if not counts else counted(cohort, study_id))
        return counts[-1]

    monkeypatch.setattr(application, "dosed_since", as_if_before_s_a)
    with pytest.raises(errors.CohortFull):
        application.infuse("S-B", LEVEL_1, dose, command(), signing(INFUSION_SIGNATURE), one_place)

    assert counts == [0, 1]  # its place was taken: decided again on the new count, refused
    assert counted(one_place) == 1
    assert application.get_treatment("S-B").infusion is None
