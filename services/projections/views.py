"""Views derived from the ledger in ledger order: subject state and the audit trail.

The reducers are pure: ``subject_state`` folds a subject's events into its state, and
``trail_rows`` says what each event changed (record, field, old and new value, who,
when, why). ``ViewStore`` keeps them in disposable tables, rebuilt from position 0 with
an identical result, and writes rows and its position in one transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.projections.clinical_endpoints import study_day
from services.projections.recorded import COMMON_FIELDS, RECORD_SIGNED, Recorded, recorded
from shared.clinical import Study
from shared.contracts.adverse_events import (
    AdverseEventGradedV1,
    AdverseEventRegradedV1,
    AdverseEventReportedV1,
    DltAdjudicatedV1,
)
from shared.contracts.assessments import (
    DiseaseActivityAssessedV1,
    ProgressionReportedV1,
    RemissionAssessedV1,
)
from shared.contracts.enrollment import (
    SUBJECT_STATUS,
    ConsentSignedV1,
    EligibilityConfirmedV1,
    ScreenFailedV1,
    ScreeningResultRecordedV1,
    SubjectDiedV1,
    SubjectEnrolledV1,
    SubjectRegisteredV1,
    SubjectWithdrawnV1,
    ValueCorrectedV1,
)
from shared.contracts.infusion import CarTInfusedV1, InfusionNotGivenV1
from shared.contracts.security import AccessDeniedV1

State = dict[str, Any]
Reducer = Callable[[State, dict[str, Any], Recorded], None]


def subject_state(state: State | None, event: Recorded, position: int, calendar: Study) -> State:
    """The subject's state after ``event`` (pure; unknown types leave it unchanged), its
    study days numbered by the ``calendar`` of the ledger's study."""
    state = dict(state or {"subject_id": event.subject, "signatures": [], "corrections": 0})
    if event.type in SUBJECT_STATUS:
        state["status"] = SUBJECT_STATUS[event.type]
    reduce = SUBJECT_REDUCERS.get(event.type)
    if reduce is not None:
        reduce(state, event.data, event)
    if (section := DAY_NUMBERED.get(event.type)) is not None:
        state[section] = {**state[section], "study_day": study_day(event.data, calendar)}
    state["position"] = position
    state["as_of"] = event.recordedtime.isoformat()
    return state


# Each reducer changes the fresh copy ``subject_state`` made, from the event's data.
def _registered(state: State, data: dict[str, Any], event: Recorded) -> None:
    state.update(site_id=data["site_id"], registered_at=event.time.isoformat())


def _consent_signed(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["consent"] = {k: data[k] for k in ("form_version", "signed_on", "obtained_by")}


def _screened(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["screened_on"] = data["screened_on"]


def _eligibility_decided(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["eligibility"] = {
        "decided_at": event.time.isoformat(),
        "rule_version": data["rule_version"],
        "eligible": event.type == EligibilityConfirmedV1.event_type,
        "failed_criteria": data.get("failed_criteria", []),
    }


def _enrolled(state: State, data: dict[str, Any], event: Recorded) -> None:
    state.update(dose_level=data["dose_level"], enrolled_at=event.time.isoformat())


def _withdrawn(state: State, data: dict[str, Any], event: Recorded) -> None:
    state.update(withdrawn_at=event.time.isoformat(), withdrawal_reason=data["reason"])


def _died(state: State, data: dict[str, Any], event: Recorded) -> None:
    state.update(died_at=event.time.isoformat(), death_cause=data["cause"])


def _corrected(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["corrections"] = state.get("corrections", 0) + 1
    section, _, name = str(data["field"]).partition(".")
    if section == "consent" and "consent" in state:
        state["consent"] = {**state["consent"], name: data["new_value"]}
    elif data["field"] == "screening.screened_on":
        state["screened_on"] = data["new_value"]


def _signed(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["signatures"] = [*state.get("signatures", []), _manifestation(data)]


def _infused(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["infusion"] = {
        "dose_level": data["dose_level"],
        "cells_per_kg_millions": data["cells_per_kg_millions"],
        "infused_at": data["started_at"],  # the study's day 0
        "lots": [lot["lot_id"] for lot in data["lots"]],
    }


def _adverse_event(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["adverse_events"] = state.get("adverse_events", 0) + 1
    state["teae"] = state.get("teae", 0) + int(bool(data["treatment_emergent"]))


def _graded(state: State, data: dict[str, Any], event: Recorded) -> None:
    # the latest grade of each adverse event; the worst over them all
    grades = {**state.get("grades", {}), data["record_id"]: [data["scale"], data["grade"]]}
    state["grades"] = grades
    state["safety"] = _worst(grades.values())


def _dlt_adjudicated(state: State, data: dict[str, Any], event: Recorded) -> None:
    dlts = dict(state.get("dlts", {}))
    dlts[data["record_id"]] = data["is_dlt"]
    state["dlts"] = dlts
    state["dlt"] = any(dlts.values())


def _disease_activity(state: State, data: dict[str, Any], event: Recorded) -> None:
    keys = ("label", "sledai_2k", "clinical_sledai", "pga")
    state["disease_activity"] = {k: data[k] for k in keys}


def _remission(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["response"] = {k: data[k] for k in ("response", "rule_version")}


def _progression(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["progression"] = {"kind": data["kind"]}


# Event type -> the section of the state that gets the event's study day, numbered in the
# ledger's study's convention (the v1 events count the infusion's date as day 1;
# NCT05030779 and SYN-CART-2 as day 0): ``subject_state`` adds it, by the study's calendar.
DAY_NUMBERED = {
    DiseaseActivityAssessedV1.event_type: "disease_activity",
    RemissionAssessedV1.event_type: "response",
    ProgressionReportedV1.event_type: "progression",
}


def _not_infused(state: State, data: dict[str, Any], event: Recorded) -> None:
    state["infusion_not_given"] = data["reason"]


# Event type -> how it changes a subject's state; a type not here changes only its status
# (``SUBJECT_STATUS``) and position.
SUBJECT_REDUCERS: dict[str, Reducer] = {
    SubjectRegisteredV1.event_type: _registered,
    ConsentSignedV1.event_type: _consent_signed,
    ScreeningResultRecordedV1.event_type: _screened,
    EligibilityConfirmedV1.event_type: _eligibility_decided,
    ScreenFailedV1.event_type: _eligibility_decided,
    SubjectEnrolledV1.event_type: _enrolled,
    SubjectWithdrawnV1.event_type: _withdrawn,
    SubjectDiedV1.event_type: _died,
    ValueCorrectedV1.event_type: _corrected,
    **dict.fromkeys(RECORD_SIGNED, _signed),
    CarTInfusedV1.event_type: _infused,
    AdverseEventReportedV1.event_type: _adverse_event,
    AdverseEventGradedV1.event_type: _graded,
    AdverseEventRegradedV1.event_type: _graded,
    DltAdjudicatedV1.event_type: _dlt_adjudicated,
    DiseaseActivityAssessedV1.event_type: _disease_activity,
    RemissionAssessedV1.event_type: _remission,
    ProgressionReportedV1.event_type: _progression,
    InfusionNotGivenV1.event_type: _not_infused,
}


def _worst(grades: Iterable[list[Any]]) -> dict[str, int]:
    graded = list(grades)
    return {
        "worst_grade": max((g for _, g in graded), default=0),
        "worst_crs": max((g for s, g in graded if s == "ASTCT-CRS"), default=0),
        "worst_icans": max((g for s, g in graded if s == "ASTCT-ICANS"), default=0),
    }


def _manifestation(data: dict[str, Any]) -> dict[str, Any]:
    """What Part 11 §11.50 asks to show with a signed record."""
    return {
        "record_version": data["signed_version"],
        "signer_id": data["signer_id"],
        "printed_name": data["printed_name"],
        "meaning": data["meaning"],
        "signed_at": data["signed_at"],
    }


class TrailRow(NamedTuple):
    """One row of ``audit_trail``, its fields in the COPY's column order."""

    position: int
    event_id: str
    event_type: str
    source: str
    subject_id: str | None
    record_type: str | None
    record_id: str
    record_version: int | None
    actor_id: str | None
    actor_name: str | None
    actor_role: str | None
    actor_site: str | None
    recorded_at: datetime
    occurred_at: datetime
    reason: str | None
    seq: int
    field: str
    old_value: str | None
    new_value: str
    # set by the RecordSigned event that signs the row's record version
    signed_by: str | None = None
    signer_name: str | None = None
    signature_meaning: str | None = None
    signed_at: datetime | None = None


_UNSIGNED = (None, None, None, None)
_make_row = TrailRow._make


def trail_rows(position: int, event: Recorded) -> list[TrailRow]:
    """One row per field the event set or changed, with old and new value (NULL-safe).

    ``old_value`` and ``new_value`` hold JSON, so an empty string, a JSON null and an
    absent value (``None``: the field did not exist before) stay distinct.
    """
    data = event.data
    actor = data.get("actor") or {}
    base = (
        position,
        str(event.id),
        event.type,
        event.source,
        event.subject,
        data.get("record_type"),
        str(data.get("record_id")),
        data.get("version"),
        actor.get("user_id"),
        actor.get("printed_name"),
        actor.get("role"),
        actor.get("site"),
        event.recordedtime,
        event.time,
        data.get("reason"),
    )
    # An event that sets no field of its own (a withdrawal: only its reason) is still a
    # change to the record: one row names it, so that no event type is missing from the trail.
    changes = TRAIL_CHANGES.get(event.type, _fields_set)(data) or [
        ("event", None, json_text(event.type))
    ]
    return [
        _make_row((*base, seq, name, old, new, *_UNSIGNED))
        for seq, (name, old, new) in enumerate(changes)
    ]


Change = tuple[str, str | None, str]


def _corrected_field(data: dict[str, Any]) -> list[Change]:
    return [(data["field"], json_text(data["old_value"]), json_text(data["new_value"]))]


def _signature(data: dict[str, Any]) -> list[Change]:
    return [("signature", None, json_text(_manifestation(data)))]


def _fields_set(data: dict[str, Any]) -> list[Change]:
    """Every field of the event's own (not the envelope's), as newly set."""
    return [
        (name, None, json_text(value))
        for name, value in sorted(data.items())
        if name not in COMMON_FIELDS
    ]


# Event type -> its trail's (field, old, new) changes; any other type: ``_fields_set``.
TRAIL_CHANGES: dict[str, Callable[[dict[str, Any]], list[Change]]] = {
    ValueCorrectedV1.event_type: _corrected_field,
    **dict.fromkeys(RECORD_SIGNED, _signature),
}


def json_text(value: Any) -> str:
    """A value as JSON text: ``""`` stays ``'""'`` and null stays ``'null'``. Text, the
    commonest value, is quoted directly (as ``json.dumps`` quotes it, with non-ASCII kept);
    the encoder is made once, not on each call as ``json.dumps`` with options does."""
    if isinstance(value, str):
        return _quoted(value)
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
_quoted: Callable[[str], str] = json.encoder.encode_basestring


VIEW_SQL = """
CREATE TABLE IF NOT EXISTS view_positions (
    view text PRIMARY KEY,
    position bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS subject_states (
    subject_id text PRIMARY KEY,
    state jsonb NOT NULL,
    position bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_trail (
    position bigint NOT NULL,
    seq integer NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    source text NOT NULL,
    subject_id text,
    record_type text,
    record_id uuid,
    record_version integer,
    field text NOT NULL,
    old_value jsonb,
    new_value jsonb,
    actor_id text,
    actor_name text,
    actor_role text,
    actor_site text,
    recorded_at timestamptz NOT NULL,
    occurred_at timestamptz NOT NULL,
    reason text,
    signed_by text,
    signer_name text,
    signature_meaning text,
    signed_at timestamptz,
    PRIMARY KEY (position, seq)
);
CREATE INDEX IF NOT EXISTS audit_trail_subject ON audit_trail (subject_id, position);
CREATE INDEX IF NOT EXISTS audit_trail_record ON audit_trail (record_id, record_version);
"""
VIEW_TABLES = ("subject_states", "audit_trail", "view_positions")
_TRAIL_COLUMNS = TrailRow._fields
# The columns a RecordSigned event sets on the trail rows of the version it signs: the last.
_SIGNATURE_COLUMNS = _TRAIL_COLUMNS[-len(_UNSIGNED) :]


class ViewStore:
    """The views' tables; the ledger writer role may change these (they are disposable)."""

    NAME = "views"

    def __init__(self, pool: asyncpg.Pool, schema: str, calendar: Study) -> None:
        self.pool = pool
        self.schema = schema
        self.calendar = calendar  # the ledger's study's: the state's study days

    @staticmethod
    async def migrate(connection: asyncpg.Connection, schema: str, role: str) -> None:
        await connection.execute(VIEW_SQL)
        for table in VIEW_TABLES:
            await connection.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}")

    async def position(self) -> int:
        value = await self.pool.fetchval(
            "SELECT position FROM view_positions WHERE view = $1", self.NAME
        )
        return int(value or 0)

    async def catch_up(self, batch: int = 1000) -> int:
        """Apply every ledger entry after the views' position, ``batch`` entries a
        transaction; returns how many. Reading and decoding the next batch overlaps the
        database's write of the one before (``_Pipeline``); if another catch-up moved the
        views meanwhile (an auditor's rebuild), it starts again from their new position."""
        applied = 0
        while True:
            pipeline = _Pipeline(self, await self.position(), batch)
            finished = await pipeline.run()
            applied += pipeline.applied
            if finished:
                return applied

    async def rebuild(self) -> int:
        """Drop every view row and replay the whole ledger."""
        async with self.pool.acquire() as connection, connection.transaction():
            await self._serialise(connection)
            for table in VIEW_TABLES:
                await connection.execute(f"DELETE FROM {table}")  # noqa: S608 (a view, not the ledger)
        return await self.catch_up()

    async def _serialise(self, connection: asyncpg.Connection) -> None:
        # the ingester's catch-up and an auditor's rebuild must not interleave
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"views:{self.schema}"
        )

    async def _entries(self, after: int, batch: int) -> Sequence[tuple[int, Recorded]]:
        rows = await self.pool.fetch(
            "SELECT position, payload FROM ledger_entries WHERE position > $1 "
            "ORDER BY position LIMIT $2",
            after,
            batch,
        )
        return recorded(rows)

    def _prepare(
        self, after: int, events: Sequence[tuple[int, Recorded]], states: dict[str, State | None]
    ) -> PreparedBatch:
        """A batch's rows, without I/O: its trail, each signature set on the signed rows
        before they are written (and kept apart for the rows of signed events in earlier
        batches), and its subjects' states after it (``states`` holds them before it)."""
        trail: list[TrailRow] = []
        signed_rows: dict[tuple[str, Any], list[int]] = {}  # (record, version) -> rows in trail
        earlier: dict[tuple[str, Any], tuple[Any, ...]] = {}  # signed rows not in this batch
        for position, event in events:
            rows = trail_rows(position, event)
            first = rows[0]  # an event's rows are all of one record version
            key = (first.record_id, first.record_version)
            signed_rows.setdefault(key, []).extend(range(len(trail), len(trail) + len(rows)))
            trail.extend(rows)
            if event.type in RECORD_SIGNED:
                key, mark = _signature_mark(event.data)
                for index in signed_rows.get(key, ()):
                    trail[index] = _make_row((*trail[index][: -len(mark)], *mark))
                if key not in signed_rows:
                    earlier[key] = mark
            if event.subject is not None and _has_state(event):
                state = states[event.subject]
                states[event.subject] = subject_state(state, event, position, self.calendar)
        return PreparedBatch(after, events[-1][0], len(events), trail, earlier, states)

    async def _write(self, batch: PreparedBatch) -> bool:
        """A prepared batch's rows and the views' new position, in one transaction and in a
        few statements (the trail COPYed); False, writing nothing, if the views are no
        longer where the batch was prepared from."""
        async with self.pool.acquire() as connection, connection.transaction():
            await self._serialise(connection)
            at = await connection.fetchval(
                "SELECT coalesce((SELECT position FROM view_positions WHERE view = $1), 0)",
                self.NAME,
            )
            if at != batch.after:
                return False
            await connection.copy_records_to_table(
                "audit_trail", records=batch.trail, columns=_TRAIL_COLUMNS, schema_name=self.schema
            )
            if batch.earlier:
                await self._mark_signed(connection, batch.earlier)
            await connection.executemany(
                "INSERT INTO subject_states (subject_id, state, position) VALUES ($1, $2, $3) "
                "ON CONFLICT (subject_id) DO UPDATE SET state = EXCLUDED.state, "
                "position = EXCLUDED.position",
                [
                    (s, json.dumps(state), state["position"])
                    for s, state in batch.states.items()
                    if state
                ],
            )
            await connection.execute(
                "INSERT INTO view_positions (view, position) VALUES ($1, $2) "
                "ON CONFLICT (view) DO UPDATE SET position = EXCLUDED.position",
                self.NAME,
                batch.last,
            )
        return True

    async def _states(self, subjects: set[str]) -> dict[str, State | None]:
        rows = await self.pool.fetch(
            "SELECT subject_id, state FROM subject_states WHERE subject_id = ANY($1::text[])",
            list(subjects),
        )
        found = {r["subject_id"]: dict(json.loads(r["state"])) for r in rows}
        return {subject: found.get(subject) for subject in subjects}

    @staticmethod
    async def _mark_signed(
        connection: asyncpg.Connection, marks: dict[tuple[str, Any], tuple[Any, ...]]
    ) -> None:
        keys, values = list(marks), list(marks.values())
        await connection.execute(
            "UPDATE audit_trail AS t SET signed_by = m.signed_by, signer_name = m.signer_name, "
            "signature_meaning = m.meaning, signed_at = m.signed_at "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::uuid[], "
            "$6::integer[]) AS m(signed_by, signer_name, meaning, signed_at, record_id, version) "
            "WHERE t.record_id = m.record_id AND t.record_version = m.version",
            *([v[i] for v in values] for i in range(len(_SIGNATURE_COLUMNS))),
            [_uuid(k[0]) for k in keys],
            [k[1] for k in keys],
        )


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch of entries made into the views' rows, ready to write after ``after``."""

    after: int  # the views' position it was prepared from
    last: int  # its last entry's position: the views' position once it is written
    count: int
    trail: list[TrailRow]
    earlier: dict[tuple[str, Any], tuple[Any, ...]]  # signatures of rows written before
    states: dict[str, State | None]  # its subjects' states after it


class _Pipeline:
    """One catch-up from ``after``: while the database writes one batch, the next is read,
    decoded and prepared, so that neither the database nor this process waits for the
    other. Correct because ledger entries never change once appended, one batch's write
    is awaited before the next is started, and the subjects of the batch still being
    written are taken from the prepared states, not from their table."""

    def __init__(self, views: ViewStore, after: int, batch: int) -> None:
        self.views, self.after, self.batch = views, after, batch
        self.applied = 0
        self._writing: asyncio.Task[bool] | None = None
        self._written: PreparedBatch | None = None

    async def run(self) -> bool:
        """True once every entry is in; False if another catch-up moved the views."""
        try:
            while True:
                events = await self.views._entries(self.after, self.batch)
                prepared = await self._prepare(events) if events else None
                if not await self._written_before():
                    return False
                if prepared is None:
                    return True
                self._start(prepared)
                if len(events) < self.batch:  # the ledger's end: no query to find nothing
                    return await self._written_before()
        except asyncio.CancelledError:
            await self._cancel()
            raise
        except Exception:
            await self._written_before()  # every batch before the error is kept
            raise

    async def _prepare(self, events: Sequence[tuple[int, Recorded]]) -> PreparedBatch:
        subjects = {e.subject for _, e in events if e.subject is not None and _has_state(e)}
        writing = self._written.states if self._written is not None else {}
        states = await self.views._states(subjects - writing.keys())
        states.update((s, writing[s]) for s in subjects & writing.keys())
        return self.views._prepare(self.after, events, states)

    def _start(self, prepared: PreparedBatch) -> None:
        self._writing = asyncio.create_task(self.views._write(prepared))
        self._written, self.after = prepared, prepared.last

    async def _written_before(self) -> bool:
        writing, self._writing = self._writing, None
        if writing is None or self._written is None:
            return True
        if written := await writing:
            self.applied += self._written.count
        return written

    async def _cancel(self) -> None:
        if self._writing is not None:
            self._writing.cancel()
            await asyncio.wait([self._writing])


def _has_state(event: Recorded) -> bool:
    """Whether the event belongs to a subject's state (a refused command does not)."""
    return bool(event.subject) and event.type != AccessDeniedV1.event_type


def _signature_mark(data: dict[str, Any]) -> tuple[tuple[str, Any], tuple[Any, ...]]:
    """The signed rows' key (record id, version) and the values a signature sets on them."""
    key = (str(data["signed_record_id"]), data["signed_version"])
    return key, (data["signer_id"], data["printed_name"], data["meaning"],
                 _timestamp(data["signed_at"]))  # fmt: skip


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _uuid(value: str) -> UUID:
    return UUID(value)


def replay_subject(
    events: Iterable[tuple[int, Recorded]], calendar: Study
) -> dict[str, Any] | None:
    """A subject's state from its events in ledger order (for "as of" queries)."""
    state: dict[str, Any] | None = None
    for position, event in events:
        if event.type != AccessDeniedV1.event_type:
            state = subject_state(state, event, position, calendar)
    return state
