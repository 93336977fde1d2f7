"""Facts kept as events are saved: what a command checks across records (how many
subjects a cohort has dosed, which subjects had a DLT, which safety reviews are approved),
read without a rescan of the event store.

A service's application names the facts its events establish
(``ServiceApplication.facts_of``); they go to the recorder with the events, and:

- on PostgreSQL (``PostgresFactRecorder``) into ``<events table>_facts``, in the
  transaction that inserts the events, after the events table's EXCLUSIVE lock. Saves are
  serialised by that lock, so facts are written in commit order by whichever process of
  the service saves: replicas never disagree, and nothing runs in one process's memory.
  A later fact of the same kind and key replaces the earlier (the latest adjudication of
  an adverse event), except a *claim*: a key taken once (a place in a cohort), whose
  second recording refuses the whole save (an ``IntegrityError``, as a stale save is
  refused), so that of two commands that counted at the same moment one decides again;
- in memory (``POPOFactRecorder``, the tests' store) into a dict, under the store's lock.

A check is one statement on the index (kind, group, recorded_at): it reads the rows it
counts (a cohort's doses, the DLTs, the reviews), however large the store grows.

Several studies share a service's store: an application keys and groups the facts of a
study's events by ``shared.study.record_key(study, ...)`` (the infusion's: its subject
and its dose level), so one study's checks never count another's, and the first study's
facts keep the keys they were recorded with.

A store that holds events from before its fact table is read once, when a process of
the service first starts with this table (``build_facts``): under the same lock, so no
save slips between the read and the row that marks the table as built.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

BUILT = "built"  # the kind of the one row that marks a fact table as built


@dataclass(frozen=True)
class Fact:
    """One fact an event established: its ``kind`` (``infused``), its ``key`` (a later
    fact of the same kind and key replaces it), the ``group`` it is counted in (a dose
    level), when it was recorded (server time), and what else a check needs (JSON). A
    ``claim`` is never replaced: recording its kind and key again refuses the save."""

    kind: str
    key: str
    group: str
    recorded_at: datetime
    value: Mapping[str, Any] = field(default_factory=dict)
    claim: bool = False


FactsOf = Callable[[Notification], Iterable[Fact]]


class FactStore(Protocol):
    """The facts a service's recorder keeps (both recorders below)."""

    def count_facts(
        self, kind: str, group: str | None = None, after: datetime | None = None
    ) -> int:
        """How many facts of ``kind`` (in ``group``; recorded after ``after``)."""
        ...

    def facts(self, kind: str, group: str | None = None) -> list[Fact]:
        """The facts of ``kind`` (in ``group``), in the order they were recorded."""
        ...

    def build_facts(self, facts_of: FactsOf) -> None:
        """Fill the facts of events stored before the fact table, once."""
        ...


class PostgresFactRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL recorder, writing the ``facts`` a save carries in its
    transaction (``postgres_env`` names it as the application recorder)."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.facts_table = f"{events_table_name}_facts"
        self.check_identifier_length(self.facts_table)
        self.sql_create_statements += [
            self._sql(
                "CREATE TABLE IF NOT EXISTS {facts} (kind text NOT NULL, key text NOT NULL, "
                "grp text NOT NULL, recorded_at timestamptz NOT NULL, value jsonb NOT NULL, "
                "PRIMARY KEY (kind, key))"
            ),
            self._sql("CREATE INDEX IF NOT EXISTS {index} ON {facts} (kind, grp, recorded_at)"),
        ]
        # one statement for all the facts of a save (in the save's pipeline, on its cursor)
        self._upsert = self._sql(
            "INSERT INTO {facts} (kind, key, grp, recorded_at, value) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], "
            "%s::jsonb[]) ON CONFLICT (kind, key) DO UPDATE SET grp = EXCLUDED.grp, "
            "recorded_at = EXCLUDED.recorded_at, value = EXCLUDED.value"
        )
        # claims: a key already taken is a unique violation, which refuses the whole save
        self._claim = self._sql(
            "INSERT INTO {facts} (kind, key, grp, recorded_at, value) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], "
            "%s::jsonb[])"
        )

    def _sql(self, template: str) -> Composed:
        schema = Identifier(self.datastore.schema)
        return SQL(template).format(
            facts=SQL("{0}.{1}").format(schema, Identifier(self.facts_table)),
            index=Identifier(f"{self.facts_table}_group_idx"),
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        facts: Sequence[Fact] = kwargs.get("facts", ())
        if facts:
            # after the lock (saves are serialised: facts go in commit order), before the
            # events, whose notification ids are read from ``curs`` after its last statement
            self._lock_table(curs)
            claims = [fact for fact in facts if fact.claim]
            if claims:
                curs.execute(self._claim, _columns(claims), prepare=True)
            if len(claims) < len(facts):
                others = [fact for fact in facts if not fact.claim]
                curs.execute(self._upsert, _columns(others), prepare=True)
        super()._insert_stored_events(curs, stored_events, **kwargs)

    def count_facts(
        self, kind: str, group: str | None = None, after: datetime | None = None
    ) -> int:
        statement, parameters = self.count_statement(kind, group, after)
        with self.datastore.get_connection() as connection, connection.cursor() as curs:
            curs.execute(statement, parameters, prepare=True)
            row = curs.fetchone()
            return 0 if row is None else int(row["count"])

    def count_statement(
        self, kind: str, group: str | None, after: datetime | None
    ) -> tuple[Composed, list[Any]]:
        """The statement ``count_facts`` runs (tests read its plan)."""
        where, parameters = self._where(kind, group)
        if after is not None:
            where += SQL(" AND recorded_at > %s")
            parameters.append(after)
        return self._sql("SELECT count(*) FROM {facts} WHERE ") + where, parameters

    def facts(self, kind: str, group: str | None = None) -> list[Fact]:
        where, parameters = self._where(kind, group)
        statement = self._sql("SELECT * FROM {facts} WHERE ") + where + SQL(" ORDER BY recorded_at")
        with self.datastore.get_connection() as connection, connection.cursor() as curs:
            curs.execute(statement, parameters, prepare=True)
            return [
                Fact(row["kind"], row["key"], row["grp"], row["recorded_at"], row["value"])
                for row in curs.fetchall()
            ]

    @staticmethod
    def _where(kind: str, group: str | None) -> tuple[Composed, list[Any]]:
        if group is None:
            return SQL("kind = %s").format(), [kind]
        return SQL("kind = %s AND grp = %s").format(), [kind, group]

    def build_facts(self, facts_of: FactsOf) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)  # no save commits until the table is built
            curs.execute(self._sql("SELECT 1 FROM {facts} WHERE kind = %s"), [BUILT])
            if curs.fetchone() is not None:
                return
            facts = [Fact(BUILT, BUILT, BUILT, datetime.now().astimezone())]
            start = 1
            # read through the pool's other connections: the lock lets readers pass
            while batch := self.select_notifications(start=start, limit=1000):
                facts.extend(fact for n in batch for fact in facts_of(n))
                start = batch[-1].id + 1
            curs.execute(self._upsert, _columns(facts))


def _columns(facts: Iterable[Fact]) -> list[list[Any]]:
    """The facts as the upsert's five arrays; of two with one kind and key, the later."""
    latest = {(fact.kind, fact.key): fact for fact in facts}.values()
    return [
        [fact.kind for fact in latest],
        [fact.key for fact in latest],
        [fact.group for fact in latest],
        [fact.recorded_at for fact in latest],
        [json.dumps(dict(fact.value)) for fact in latest],
    ]


class POPOFactRecorder(POPOApplicationRecorder):
    """eventsourcing's in-memory recorder, keeping the facts a save carries beside its
    events, under the same lock."""

    def __init__(self) -> None:
        super().__init__()
        self._facts: dict[tuple[str, str], Fact] = {}

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        for fact in kwargs.get("facts", ()):  # before the events: a taken claim saves nothing
            if fact.claim and (fact.kind, fact.key) in self._facts:
                raise IntegrityError(f"{fact.kind} {fact.key} is taken")
        notification_ids = super()._update_table(stored_events, **kwargs)
        for fact in kwargs.get("facts", ()):
            self._facts.pop((fact.kind, fact.key), None)  # a replaced fact is recorded anew
            self._facts[fact.kind, fact.key] = fact
        return notification_ids

    def count_facts(
        self, kind: str, group: str | None = None, after: datetime | None = None
    ) -> int:
        return sum(1 for f in self.facts(kind, group) if after is None or f.recorded_at > after)

    def facts(self, kind: str, group: str | None = None) -> list[Fact]:
        with self._database_lock:
            found = [f for f in self._facts.values() if f.kind == kind]
        matching = [f for f in found if group is None or f.group == group]
        return sorted(matching, key=lambda f: f.recorded_at)

    def build_facts(self, facts_of: FactsOf) -> None:
        """Nothing to build: an in-memory store starts empty, with its facts."""
