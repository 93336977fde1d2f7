"""The auditor's operations over the ledger: trail, subject state "as of", verification,
proofs and exports. Every call is recorded in ``auditor_activity``, refused ones too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.projections import accounts, clinical_endpoints, merkle, odm, plots, sdtm
from services.projections.clinical_endpoints import EndpointRules, TrialHistory, endpoint_rules
from services.projections.config import LedgerConfig, witness_verifier
from services.projections.domain import Checkpoint, Trust, VerificationReport
from services.projections.integrity import WitnessTrust, check_ledger
from services.projections.ledger import LedgerStore
from services.projections.notes import Verifier, cosigned
from services.projections.offline import build_export
from services.projections.reconcile import (
    StoredEvent,
    StoreEndpoint,
    StoreReading,
    StoreSummary,
    compare,
    complete_by_head,
    completeness,
)
from services.projections.recorded import Recorded, recorded
from services.projections.stores import StoreReader, store_endpoints
from services.projections.views import ViewStore, replay_subject
from shared.contracts.adverse_events import SafetyReviewApprovedV1
from shared.contracts.infusion import CarTInfusedV1
from shared.kernel.errors import InvalidValue, NotFound, Overloaded
from shared.kernel.permissions import SeparationOfDuties, table
from shared.kernel.provenance import Role
from shared.kernel.settings import ServiceSettings, SettingsError, separation_of_duties
from shared.study import DEFAULT_STUDY_ID, study_definition
from shared.web.auth import Forbidden, Principal
from shared.web.pool import BoundedPool

T = TypeVar("T")
# Reports that may wait for the reports' thread; more are refused. A console page asks for
# its plots at once (a swimmer plot and one per subject, six at a time per browser), so
# a few auditors' pages fit; each waiting report holds the entries it read.
REPORTS_WAITING = 32

READS = table("projections")  # the ledger's reads, by action (shared.kernel.permissions)
# Every role some read permits: the API names these for each route that needs a token.
READERS: frozenset[Role] = frozenset().union(*READS.permissions.values())
Progress = Callable[[int], None]


@dataclass(frozen=True)
class WorkingHours:
    """A site's working day: ``start`` to ``end`` hours (0-24), Monday to Friday, in the
    IANA time ``zone`` (checked by the caller: ``zoneinfo``)."""

    start: int
    end: int
    zone: str


# Recorded on a weekend, or before start or at or after end, in the zone's local time.
OUTSIDE_HOURS = (
    "(extract(isodow FROM recorded_at AT TIME ZONE {0}::text) >= 6 OR "
    "extract(hour FROM recorded_at AT TIME ZONE {0}::text) NOT BETWEEN {1}::int AND {2}::int - 1)"
)
LATE = "{} >= make_interval(secs => {}::float8 * 3600)"


@dataclass(frozen=True)
class TrailFilter:
    subject_id: str | None = None
    user_id: str | None = None
    record_id: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 1000
    role: str | None = None  # the role the actor acted in
    reason: str | None = None  # text the reason contains, in any case
    offset: int = 0  # rows skipped (paging)
    # the review reports (docs/auditing.md, "Console"):
    entered_late_hours: float | None = None  # recorded at least this long after the fact
    signed_late_hours: float | None = None  # signed at least this long after recording
    outside: WorkingHours | None = None  # recorded outside these working hours

    def sql(self) -> tuple[str, list[Any]]:
        values: list[Any] = []

        def parameter(value: Any) -> str:
            values.append(value)
            return f"${len(values)}"

        clauses = [
            template.format(*[parameter(argument) for argument in arguments])
            for template, *arguments in self._conditions()
            if arguments[0] is not None
        ]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        page = f"LIMIT {parameter(self.limit)} OFFSET {parameter(self.offset)}"
        return f"{where} ORDER BY position, seq {page}", values

    def _conditions(self) -> list[tuple[Any, ...]]:
        """(SQL with ``{}`` for each value, the values): a condition whose first value is
        None is not asked for."""
        types = None if self.event_type is None else self.event_type.split(",")
        hours = self.outside
        return [
            ("subject_id = {}", self.subject_id),
            ("actor_id = {}", self.user_id),
            ("record_id::text = {}", self.record_id),
            ("event_type = ANY({}::text[])", types),  # one type, or several comma-separated
            ("recorded_at >= {}", self.since),
            ("recorded_at <= {}", self.until),
            ("actor_role = {}", self.role),
            ("strpos(lower(reason), lower({})) > 0", self.reason),
            (LATE.format("recorded_at - occurred_at", "{}"), self.entered_late_hours),
            (LATE.format("signed_at - recorded_at", "{}"), self.signed_late_hours),
            (OUTSIDE_HOURS, *((None,) if hours is None else (hours.zone, hours.start, hours.end))),
        ]


class ProjectionsApplication:
    """Read-side operations; each is attributed to the authenticated auditor or monitor."""

    def __init__(
        self,
        ledger: LedgerStore,
        checkpoint_keys: Sequence[Ed25519PublicKey],
        stores: Sequence[StoreEndpoint] = (),
        stall_after: float = 30.0,
        bootstrap: str | None = None,
        max_gap: int | None = None,
        record_keys: Sequence[Ed25519PublicKey] = (),
        witness: WitnessTrust | None = None,
        duties: SeparationOfDuties | None = None,
        study_id: str | None = None,
    ) -> None:
        """``stores``: the command services whose stores feed the ledger (compared by
        ``verify`` and ``reconcile``); an event stored less than ``stall_after`` seconds
        ago may still be on its way; ``bootstrap``: the Kafka the newest entries are
        checked against (without it, by their hashes only); ``checkpoint_keys``: every
        key checkpoints may be signed with (the current one and those rotated out);
        ``max_gap``: how far apart checkpoints may be (``TL_CHECKPOINT_EVERY``);
        ``record_keys``: the record-signature public keys, written into exports so that
        their signatures can be checked offline (an auditor should bring their own);
        ``witness``: the witness that cosigns (``TL_WITNESS_URL``, ``TL_WITNESS_VKEY``),
        asked by ``verify`` for its newest cosigned checkpoint when an auditor names it;
        ``duties``: the role pairs no one may hold together (``TL_INCOMPATIBLE_ROLES``, as
        the identity service is given them), for the account review; ``study_id``: the
        study whose ledger this is, where the stores hold several studies' events (their
        events are compared with this ledger's only: ``stores.study_of``; None: one study,
        every stored event)."""
        self.ledger = ledger
        self.study_id = study_id
        self.duties = duties or SeparationOfDuties.default()
        self.checkpoint_keys = list(checkpoint_keys)
        self.max_gap = max_gap
        self.record_keys = list(record_keys)
        self.stores = list(stores)
        self.stall_after = stall_after
        self.bootstrap = bootstrap
        self.witness = witness
        # The endpoints, plots, safety summary and exports read the ledger's study's
        # definition (not the first study's: each ledger is one study's)
        self.study = study_definition(study_id or DEFAULT_STUDY_ID)
        self.endpoint_rules = endpoint_rules(self.study.study_id)
        self.views = ViewStore(ledger.pool, ledger.schema, self.endpoint_rules.calendar)
        # The trial's history now, advanced by each request by the entries since: the
        # endpoints, plots and safety summary of the ledger now cost the new entries only.
        self._now = TrialHistory(rules=self.endpoint_rules)
        self._advancing = asyncio.Lock()
        # Reports (endpoints, plots, exports, reconcile) are seconds of Python over the
        # whole ledger: computed on the event loop they would stop this service's ingest,
        # views and /ready for as long. They run in one thread of their own (the kept
        # history is touched there only), a few may wait, and more are refused (503).
        self.reports = BoundedPool("reports", 1, REPORTS_WAITING, _reports_busy)

    @classmethod
    def configured(
        cls,
        settings: ServiceSettings,
        config: LedgerConfig,
        ledger: LedgerStore,
        study_id: str | None = None,
    ) -> ProjectionsApplication:
        """The application as the service and its CLI run it, from their settings
        (``study_id``: of one study's ledger among several)."""
        return cls(
            ledger,
            config.checkpoint_keys,
            store_endpoints(),
            config.stall_after,
            settings.kafka_bootstrap,
            config.checkpoint_every,
            config.record_keys,
            None if config.witness is None else WitnessTrust(config.witness, config.witness_url),
            separation_of_duties(),
            study_id,
        )

    def witness_trust(self, vkey: str) -> WitnessTrust:
        """The witness an auditor names by its vkey, asked at its URL when it is the one
        this service submits to."""
        try:
            verifier = witness_verifier(vkey, "witness")
        except SettingsError as error:
            raise BadWitnessKey(str(error), vkey=vkey) from None
        if self.witness is not None and self.witness.verifier.vkey() == verifier.vkey():
            return self.witness
        return WitnessTrust(verifier)

    async def authorise(self, who: Principal, action: str, parameters: dict[str, Any]) -> Role:
        """The role ``who`` reads in, when the table permits ``action`` to one of theirs;
        anyone else is refused, and that is recorded."""
        role = READS.acting_role(f"projections.{action}", who.roles)
        if role is None:
            await self._record(who, "-", action, parameters, "denied")
            permitted = " and ".join(sorted(READS.roles(f"projections.{action}")))
            raise Forbidden(f"{who.user_id} may not {action}: {permitted} only")
        await self._record(who, role, action, parameters, "allowed")
        return role

    async def refuse_study(self, who: Principal, command: str, study_id: str) -> None:
        """Record that ``who``'s token, for another study, asked this ledger (``study_id``'s)
        to ``command``: refused (``shared.web.http.study_not_granted``)."""
        parameters = {"study_id": study_id, "token_study_id": who.study_id}
        await self._record(who, "-", command.removeprefix("projections."), parameters, "denied")

    async def trail(self, who: Principal, filters: TrailFilter) -> list[dict[str, Any]]:
        await self.authorise(who, "trail", asdict(filters))
        where, values = filters.sql()
        try:
            rows = await self.ledger.pool.fetch(f"SELECT * FROM audit_trail {where}", *values)  # noqa: S608
        except asyncpg.InvalidParameterValueError as error:  # a zone PostgreSQL does not know
            zone = None if filters.outside is None else filters.outside.zone
            raise InvalidValue(f"the trail filter was refused: {error}", zone=zone) from None
        return [_plain(dict(r)) for r in rows]

    async def account_review(self, who: Principal, user_id: str | None) -> dict[str, Any]:
        """Every change of an account's roles or status, and every refused one, with who,
        when and why; and the accounts that hold roles separation of duties forbids
        together (``services.projections.accounts``). Read as the trail is; a report,
        computed in the reports' thread (every identity event is decoded)."""
        await self.authorise(who, "trail", {"view": "account-review", "user_id": user_id})
        rows = await self.ledger.pool.fetch(
            "SELECT position, payload FROM ledger_entries "
            "WHERE source = $1 AND event_type = ANY($2::text[]) ORDER BY position",
            accounts.IDENTITY_SOURCE,
            list(accounts.REVIEWED),
        )
        # the review is of the study whose ledger this is (None: the first study's)
        study, duties = self.ledger.study_id, self.duties
        return await self.reports.run(
            lambda: accounts.review(recorded(rows), duties, user_id, study)
        )

    async def subject(
        self,
        who: Principal,
        subject_id: str,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any] | None:
        """The subject's state now, at time ``as_of``, or at ledger ``position``, by replay."""
        parameters = {"subject_id": subject_id, "as_of": as_of, "position": position}
        await self.authorise(who, "subject", parameters)
        rows = await self.ledger.pool.fetch(
            "SELECT position, payload FROM ledger_entries WHERE subject_id = $1 "
            "AND ($2::timestamptz IS NULL OR recorded_at <= $2) "
            "AND ($3::bigint IS NULL OR position <= $3) ORDER BY position",
            subject_id,
            as_of,
            position,
        )
        return replay_subject(recorded(rows), self.endpoint_rules.calendar)

    async def trial(self, who: Principal) -> dict[str, Any]:
        """The safety summary: DLTs per dose level and TEAE incidence (as defined for the
        endpoints, docs/endpoints.md), every safety-review decision with its ledger
        position (its trail: GET /trail), and the escalation in clinical order: each
        infusion and each review by the time it happened, so that a reader sees every
        cohort dosed after the review that opened it."""
        await self.authorise(who, "trial", {})
        return await self._of_history(None, None, _safety_summary)

    async def endpoints(
        self, who: Principal, as_of: datetime | None = None, position: int | None = None
    ) -> dict[str, Any]:
        """The trial's endpoints recomputed from the ledger, now or as of a time or position
        (docs/endpoints.md); every figure names its subjects and entries."""
        await self.authorise(who, "endpoints", {"as_of": as_of, "position": position})
        rules = self.endpoint_rules
        return await self._of_history(
            as_of,
            position,
            lambda history: clinical_endpoints.endpoints_of(history.population, rules),
        )

    async def plot(
        self,
        who: Principal,
        name: str,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> bytes:
        """``swimmer`` or ``kinetics/<subject>``, as SVG, from the ledger as of then."""
        await self.authorise(who, "plot", {"name": name, "as_of": as_of, "position": position})
        return await self._of_history(as_of, position, lambda history: _plot(name, history))

    async def _of_history(
        self, as_of: datetime | None, position: int | None, report: Callable[[TrialHistory], T]
    ) -> T:
        """``report`` of the trial's history as of a time or a position, by a replay; now,
        by advancing the one kept (the ledger's single writer commits dense positions in
        order, and never changes an entry, so the entries after the kept position are all
        that is new; a payload changed in place by tampering is ``verify``'s to find). The
        folding and the report run in the reports' thread."""
        rules = self.endpoint_rules
        if as_of is not None or position is not None:
            rows = await self._rows(as_of, position)
            return await self.reports.run(lambda: report(TrialHistory.of(recorded(rows), rules)))
        async with self._advancing:
            new = await self._rows(after=self._now.position)
            return await self.reports.run(lambda: report(self._advanced(new)))

    def _advanced(self, rows: Sequence[asyncpg.Record]) -> TrialHistory:
        # in the reports' one thread; a request cancelled while its report ran leaves the
        # kept history advanced already, so entries read before that are skipped
        self._now.advance(e for e in recorded(rows) if e[0] > self._now.position)
        return self._now

    async def _rows(
        self, as_of: datetime | None = None, position: int | None = None, after: int = 0
    ) -> list[asyncpg.Record]:
        """The ledger's entries (position, payload) up to a time or a position, after
        ``after``: decoded by ``recorded``, in the reports' thread."""
        rows: list[asyncpg.Record] = await self.ledger.pool.fetch(
            "SELECT position, payload FROM ledger_entries WHERE position > $3 "
            "AND ($1::timestamptz IS NULL OR recorded_at <= $1) "
            "AND ($2::bigint IS NULL OR position <= $2) ORDER BY position",
            as_of,
            position,
            after,
        )
        return rows

    async def verify(
        self,
        who: Principal,
        progress: Progress | None = None,
        token: str | None = None,
        witness: WitnessTrust | None = None,
    ) -> VerificationReport:
        """The ledger's hashes, root and signed checkpoints; with the auditor's ``token``,
        also every service's store against the ledger (what is stored but missing); with
        ``witness``, against that witness's cosigned checkpoints."""
        parameters = {
            "stores": token is not None,
            "witness": None if witness is None else witness.verifier.vkey(),
        }
        await self.authorise(who, "verify", parameters)
        report = await self.verify_unattributed(progress, witness)
        if token is not None:
            report.stores = await self._completeness(self._reader(token))
        return report

    async def verify_unattributed(
        self, progress: Progress | None = None, witness: WitnessTrust | None = None
    ) -> VerificationReport:
        """Verification for the service itself (tests, benchmarks): hashes, roots,
        signatures, the entries after the newest checkpoint against Kafka, and the
        ``witness``'s cosigned checkpoints."""
        return await check_ledger(self.ledger, self.trust, self.bootstrap, progress, witness)

    @property
    def trust(self) -> Trust:
        """What verification trusts: the checkpoint keys, the ledger's origin, the gap."""
        return Trust(self.checkpoint_keys, self.ledger.origin or None, self.max_gap)

    async def inclusion_proof(self, who: Principal, position: int) -> dict[str, Any]:
        """An RFC 6962 inclusion proof of one entry in the latest signed checkpoint."""
        await self.authorise(who, "proof", {"position": position})
        checkpoint = await self._latest_checkpoint()
        _within(checkpoint, position, "position")
        leaves = await self.ledger.leaves_between(0, checkpoint.size)
        # O(size) hashes: a report's work, in the reports' thread
        proof = await self.reports.run(lambda: merkle.inclusion_proof(leaves, position - 1))
        return {
            "position": position,
            "leaf_hash": leaves[position - 1].hex(),
            "tree_size": checkpoint.size,
            "proof": [p.hex() for p in proof],
            "checkpoint": checkpoint.to_json(),
        }

    async def consistency_proof(
        self, who: Principal, old_size: int, new_size: int | None = None
    ) -> dict[str, Any]:
        """An RFC 6962 consistency proof from ``old_size`` to ``new_size`` (by default the
        latest signed checkpoint's), any two sizes within the latest signed checkpoint."""
        await self.authorise(who, "proof", {"old_size": old_size, "new_size": new_size})
        latest = await self._latest_checkpoint()
        new_size = latest.size if new_size is None else new_size
        _within(latest, new_size, "new_size")
        _within(latest, old_size, "old_size")
        if old_size > new_size:
            raise NotInCheckpoint(f"old_size {old_size} is past new_size {new_size}",
                                  checkpoint_size=latest.size)  # fmt: skip
        leaves = await self.ledger.leaves_between(0, new_size)
        signed = {c.size: c for c in await self.checkpoints(after=new_size - 1, limit=1)}

        def proven() -> dict[str, Any]:  # O(new_size) hashes: in the reports' thread
            return {
                "old_size": old_size,
                "old_root": merkle.root(leaves[:old_size]).hex(),
                "new_size": new_size,
                "new_root": merkle.root(leaves).hex(),
                "proof": [p.hex() for p in merkle.consistency_proof(leaves, old_size)],
                "checkpoint": (signed.get(new_size) or latest).to_json(),
            }

        return await self.reports.run(proven)

    async def checkpoint_note(self) -> str:
        """The latest C2SP checkpoint, as a signed note (public: a size and a root)."""
        checkpoint = await self._latest_checkpoint()
        if checkpoint.note is None:
            raise NotInCheckpoint("no C2SP checkpoint is signed yet",
                                  checkpoint_size=checkpoint.size)  # fmt: skip
        return checkpoint.note

    async def checkpoint_history(self, after: int, limit: int) -> dict[str, Any]:
        """Signed checkpoints after size ``after``, oldest first, with the verifier keys
        of the ledger (public: what a witness or a monitor needs)."""
        found = await self.checkpoints(after, limit)
        return {
            "origin": self.ledger.origin,
            "vkeys": [Verifier.of(self.ledger.origin, k).vkey() for k in self.checkpoint_keys],
            "checkpoints": [
                {"size": c.size, "signed_at": c.signed_at.isoformat(), "note": c.note}
                for c in found
            ],
        }

    async def checkpoints(self, after: int = 0, limit: int | None = None) -> list[Checkpoint]:
        """The signed checkpoints of sizes above ``after`` (at most ``limit``), each note
        with the cosignature lines its witnesses returned appended (a cosigned checkpoint,
        as tlog-witness clients read it)."""
        found = await self.ledger.checkpoints(after, limit)
        return await self._cosigned(found)

    async def _cosigned(self, checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
        lines = await self.ledger.cosignatures([c.size for c in checkpoints])
        return [
            replace(c, note=cosigned(c.note, lines[c.size]))
            if c.note is not None and c.size in lines
            else c
            for c in checkpoints
        ]

    async def latest_checkpoint(self) -> Checkpoint | None:
        """The newest signed checkpoint with its cosignatures, read by itself (monitors
        poll it; the console shows it), not from the whole history (None: none yet)."""
        latest = await self.ledger.latest_checkpoint()
        return None if latest is None else (await self._cosigned([latest]))[0]

    async def _latest_checkpoint(self) -> Checkpoint:
        latest = await self.latest_checkpoint()
        if latest is None:
            raise NotInCheckpoint("no checkpoint is signed yet", checkpoint_size=0)
        return latest

    async def export(self, who: Principal, subject_id: str | None = None) -> dict[str, Any]:
        """Every entry up to the latest signed checkpoint, or one subject's, as published,
        each with its inclusion proof in that checkpoint, and the keys, so that the copy
        verifies offline (``offline.verify_export``; docs/auditing.md, "The export format");
        with the endpoints and plots computed from exactly these entries."""
        return await self.reports.run(await self._exporting(who, subject_id))

    async def export_json(self, who: Principal, subject_id: str | None = None) -> bytes:
        """``export`` as JSON text (compact UTF-8, as the API writes JSON). The text is
        made in the reports' thread as well: for a whole ledger it is seconds of work."""
        document = await self._exporting(who, subject_id)
        return await self.reports.run(lambda: _json_text(document()))

    async def _exporting(
        self, who: Principal, subject_id: str | None
    ) -> Callable[[], dict[str, Any]]:
        """The export authorised and its entries read: its document, to be built in the
        reports' thread."""
        await self.authorise(who, "export", {"subject_id": subject_id})
        checkpoint = await self._latest_checkpoint()
        if checkpoint.note is None:
            raise NotInCheckpoint("no C2SP checkpoint is signed yet: an export is proven in one",
                                  checkpoint_size=checkpoint.size)  # fmt: skip
        leaves = await self.ledger.leaves_between(0, checkpoint.size)
        rows = await self.ledger.pool.fetch(
            "SELECT position, payload FROM ledger_entries WHERE position <= $1 "
            "AND ($2::text IS NULL OR subject_id = $2) ORDER BY position",
            checkpoint.size,
            subject_id,
        )
        entries = [(int(r["position"]), bytes(r["payload"])) for r in rows]
        note, rules = checkpoint.note, self.endpoint_rules
        checkpoint_keys = [Verifier.of(self.ledger.origin, k) for k in self.checkpoint_keys]
        witnesses = [] if self.witness is None else [self.witness.verifier]

        def document() -> dict[str, Any]:
            built = build_export(note, leaves, entries, subject_id=subject_id,
                                 checkpoint_keys=checkpoint_keys, record_keys=self.record_keys,
                                 witnesses=witnesses)  # fmt: skip
            events = recorded(entries)
            built["endpoints"] = clinical_endpoints.trial_endpoints(events, rules)
            plotted = _plots(events, rules)
            built["plots"] = {f"{name}.svg": svg.decode() for name, svg in plotted.items()}
            return built

        return document

    async def odm(
        self, who: Principal, as_of: datetime | None = None, position: int | None = None
    ) -> bytes:
        """The trial's clinical data, audit records and signatures as CDISC ODM 1.3.2 XML,
        from the ledger now, as of a time or at a position (docs/exports.md). Read and
        recorded as an export."""
        parameters = {"format": "odm-1.3.2", "as_of": as_of, "position": position}
        await self.authorise(who, "export", parameters)
        rows, now, study = await self._rows(as_of, position), datetime.now(UTC), self.study
        return await self.reports.run(
            lambda: odm.odm_document(recorded(rows), now, as_of, study=study)
        )

    async def sdtm(
        self, who: Principal, as_of: datetime | None = None, position: int | None = None
    ) -> tuple[dict[str, sdtm.Dataset], list[tuple[str, ...]]]:
        """The SDTM datasets (TA, TE, TS; DM, DS, EX, AE, LB, PC, RS, QS and their SUPP--)
        and the trace table of each row's ledger entries, from the ledger now, as of a time
        or at a position (docs/exports.md). Read and recorded as an export. The ledger's
        own study names them (STUDYID, USUBJID) and gives the trial design and summary."""
        parameters = {"format": f"sdtmig-{sdtm.SDTMIG_VERSION}", "as_of": as_of,
                      "position": position}  # fmt: skip
        await self.authorise(who, "export", parameters)
        rows, study = await self._rows(as_of, position), self.study

        def exported() -> tuple[dict[str, sdtm.Dataset], list[tuple[str, ...]]]:
            entries = recorded(rows)
            datasets = sdtm.sdtm_datasets(entries, study)
            return datasets, sdtm.trace_rows(datasets, entries)

        return await self.reports.run(exported)

    async def reconcile(self, who: Principal, token: str) -> dict[str, Any]:
        """Every stored event of every service, read through the services' own APIs with
        the auditor's ``token``, exactly once in the ledger and byte for byte; nothing in
        the ledger that its store does not hold. Anything unexpected is a difference."""
        await self.authorise(who, "reconcile", {"sources": [e.source for e in self.stores]})
        reader = self._reader(token)
        readings = [await reader.events(r, payload=True) if r.problem is None else r
                    for r in await reader.heads()]  # fmt: skip
        rows = await self.ledger.pool.fetch(
            "SELECT position, source, event_id, payload FROM ledger_entries ORDER BY position"
        )
        ledger = [
            (r["position"], r["source"], str(r["event_id"]), bytes(r["payload"])) for r in rows
        ]
        now, stall_after = datetime.now(UTC), self.stall_after
        differences = await self.reports.run(lambda: compare(readings, ledger, now, stall_after))
        return {
            "ok": not any(found for kind, found in differences.items() if kind != "in_flight"),
            "sources": {r.endpoint.source: len(r.events) for r in readings},
            "ledger_entries": len(ledger),
            "differences": differences,
        }

    def _reader(self, token: str) -> StoreReader:
        return StoreReader(self.stores, token, study_id=self.study_id)

    async def _completeness(self, reader: StoreReader) -> list[StoreSummary]:
        """Each store's head against the ledger; where they differ, every id compared and
        each missing event read back for its type and recorded time."""
        summaries = []
        for reading in await reader.heads():
            in_ledger = await self._ledger_ids(reading.endpoint.source)
            details: dict[int, StoredEvent] = {}
            # the unprefixed head counts every study's events: where the reader filters
            # them (the first study's, among several), every event is compared
            if reading.head is not None and (
                reader.filters or not complete_by_head(reading.head, in_ledger)
            ):
                await reader.events(reading, payload=False)
                details = await self._missing_details(reader, reading, in_ledger)
            summary = completeness(reading, in_ledger, details, datetime.now(UTC),
                                   self.stall_after)  # fmt: skip
            summaries.append(summary)
        return summaries

    async def _ledger_ids(self, source: str) -> set[str]:
        rows = await self.ledger.pool.fetch(
            "SELECT event_id::text AS event_id FROM ledger_entries WHERE source = $1", source
        )
        return {r["event_id"] for r in rows}

    @staticmethod
    async def _missing_details(
        reader: StoreReader, reading: StoreReading, in_ledger: set[str]
    ) -> dict[int, StoredEvent]:
        missing = [e.position for e in reading.events if e.event_id not in in_ledger]
        if not missing or reading.problem is not None:
            return {}
        found = StoreReading(reading.endpoint)
        # a few are read one by one; many, in one pass over the store
        await reader.events(found, payload=True, positions=None if len(missing) > 50 else missing)
        if found.problem is not None:
            reading.problem = found.problem
        return {e.position: e for e in found.events}

    async def rebuild(self, who: Principal) -> int:
        await self.authorise(who, "rebuild", {})
        return await self.views.rebuild()

    async def _record(
        self, who: Principal, role: str, action: str, parameters: dict[str, Any], outcome: str
    ) -> None:
        await self.ledger.record_activity(
            who.user_id, who.printed_name, role, action, parameters, outcome
        )


def _safety_summary(history: TrialHistory) -> dict[str, Any]:
    """``ProjectionsApplication.trial``'s summary of ``history``."""
    population = history.population
    teae = clinical_endpoints.teae_incidence(population)
    return {
        "dose_levels": {
            level: {"dosed": r["denominator"], "dlts": r["numerator"],
                    "dlt_rate": f"{r['numerator']}/{r['denominator']}"}
            for level, r in clinical_endpoints.dlt_rates(population).items()
        },
        "teae_incidence": {
            "subjects_with_teae": teae["numerator"],
            "subjects_infused": teae["denominator"],
        },
        "cohort_decisions": [
            {"position": position, **_review(event)}
            for position, event in history.milestones
            if event.type == SafetyReviewApprovedV1.event_type
        ],
        "escalation_timeline": _escalation_timeline(history.milestones),
    }  # fmt: skip


def _json_text(document: dict[str, Any]) -> bytes:
    # as starlette's JSONResponse renders: the same bytes the API answered before
    return json.dumps(
        document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def _plot(name: str, history: TrialHistory) -> bytes:
    """The plot ``name`` of ``history``: ``swimmer`` or ``kinetics/<subject>``."""
    population = history.population
    if name == "swimmer":
        return plots.swimmer_svg(population)
    subject = name.removeprefix("kinetics/")
    for course in population:  # draw only the plot asked for
        if name != subject and course.subject_id == subject and course.kinetics:
            return plots.kinetics_svg(course)
    raise PlotNotFound(f"no plot {name!r}: swimmer, or kinetics/<subject> of a subject "
                       "with CAR-T kinetics")  # fmt: skip


def _plots(entries: Sequence[tuple[int, Recorded]], rules: EndpointRules) -> dict[str, bytes]:
    """Every plot of the ledger's state (its study's ``rules``): the swimmer plot, and each
    subject's kinetics."""
    infused = TrialHistory.of(entries, rules).population
    drawn = {"swimmer": plots.swimmer_svg(infused)}
    for course in infused:
        if course.kinetics:
            drawn[f"kinetics/{course.subject_id}"] = plots.kinetics_svg(course)
    return drawn


class ReportsBusy(Overloaded):
    """More reports are waiting than the service takes (``REPORTS_WAITING``)."""


def _reports_busy() -> ReportsBusy:
    return ReportsBusy(
        "more reports (endpoints, plots, exports, reconcile) are waiting than this service "
        "takes; try again shortly",
        retry_after_seconds=5,
    )


class PlotNotFound(NotFound, LookupError):
    code = "plot_not_found"


class BadWitnessKey(InvalidValue):
    """A witness is named by its cosignature verifier key (c2sp.org/tlog-cosignature)."""

    code = "bad_witness_key"


class NotInCheckpoint(NotFound):
    """A proof or an export needs a signed checkpoint that covers what is asked for: the
    positions and tree sizes 1 .. the latest checkpoint's size."""

    code = "not_in_checkpoint"


def _within(checkpoint: Checkpoint, position: int, name: str) -> None:
    if not 1 <= position <= checkpoint.size:
        raise NotInCheckpoint(
            f"{name} {position} is outside the latest signed checkpoint (1 to {checkpoint.size})",
            **{name: position, "checkpoint_size": checkpoint.size},
        )


def _review(event: Recorded) -> dict[str, Any]:
    data = event.data
    keep = ("review_number", "approved_level", "decision", "level_reviewed", "dosed", "dlts")
    decision = {key: data[key] for key in keep}
    return {
        **decision,
        "occurred_at": event.time.isoformat(),  # when the review met (clinical time)
        "recorded_at": data["recorded_at"],
        "by": data["actor"]["printed_name"],
    }


def _escalation_timeline(entries: Sequence[tuple[int, Recorded]]) -> list[dict[str, Any]]:
    """Infusions and safety reviews in clinical order (ties: ledger order)."""
    steps = []
    for position, event in entries:
        if event.type == CarTInfusedV1.event_type:
            step = {"step": "infusion", "subject_id": event.subject,
                    "dose_level": event.data["dose_level"]}  # fmt: skip
        elif event.type == SafetyReviewApprovedV1.event_type:
            step = {"step": "safety_review", "review_number": event.data["review_number"],
                    "dose_level": event.data["approved_level"]}  # fmt: skip
        else:
            continue
        steps.append((event.time, position, step))
    return [
        {"occurred_at": at.isoformat(), "position": position, **step}
        for at, position, step in sorted(steps, key=lambda s: (s[0], s[1]))
    ]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value if value is None or isinstance(value, (int, str, bool)) else str(value)
    return out
