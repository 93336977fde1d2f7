"""A ledger per study, on the real broker and PostgreSQL: the records of two studies on the
same topic land in two ledgers, each with its own tree, checkpoints (an origin naming the
study), views, exports and API under ``/studies/<id>``; neither holds an event of the other;
a record of a study not served is a dead letter, never an entry; and one study's broken
ledger holds back no other's ingest."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from typer.testing import CliRunner, Result

from services.projections import console as console_module
from services.projections.__main__ import known_contracts
from services.projections.api import create_app
from services.projections.application import ProjectionsApplication
from services.projections.cli import app as cli_app
from services.projections.config import ConsoleConfig
from services.projections.domain import Trust
from services.projections.ingest import OTHER_STUDY, Ingester, IngestOptions
from services.projections.integrity import check_ledger
from services.projections.ledger import LedgerStore
from services.projections.notes import Verifier
from services.projections.offline import TrustedKeys, verify_export
from services.projections.reconcile import StoreEndpoint, StoreReading
from services.projections.stores import StoreReader, study_of
from services.projections.studies import group_id, study_ledgers, study_schema
from shared.contracts import identity as identity_contracts
from shared.kernel.envelope import CloudEvent
from shared.kernel.principals import Principal
from shared.kernel.provenance import Role
from shared.kernel.settings import ServiceSettings
from shared.study import DEFAULT_STUDY_ID
from tests.projections.conftest import CHECKPOINT_KEY, Feed, published_events
from tests.support import (
    ISSUER,
    RECORD_KEY,
    TOKEN_KEY,
    VERIFIER,
    bearer,
    eventually,
    principal,
)

pytestmark = pytest.mark.integration
SECOND = "SYN-CART-2"
STUDIES = (DEFAULT_STUDY_ID, SECOND)
FIRST_AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")
SECOND_AUDITOR = replace(principal(Role.AUDITOR, user_id="aud.lee"), study_id=SECOND)


async def _holds(ledger: LedgerStore, size: int) -> bool:
    return await ledger.size() >= size


async def _read_all(feed: Feed) -> bool:
    return not await feed.unread()


def of_study(events: Sequence[CloudEvent], study_id: str) -> list[CloudEvent]:
    """``events`` as a relay of ``study_id`` publishes them (the extension ``studyid``)."""
    return [e.model_copy(update={"studyid": study_id}) for e in events]


@dataclass
class Studies:
    """Two studies' ledgers fed by one topic."""

    settings: ServiceSettings
    origin: str
    ledgers: dict[str, LedgerStore]
    applications: dict[str, ProjectionsApplication]

    def ingester(self, study: str, **options: float) -> Ingester:
        return Ingester(
            self.ledgers[study],
            self.settings.kafka_bootstrap,
            [self.settings.topic],
            known_contracts(),
            CHECKPOINT_KEY,
            IngestOptions(**{"checkpoint_every": 10_000, "poll_ms": 200, **options}),  # type: ignore[arg-type]
            on_appended=self.applications[study].views.catch_up,
            study_id=study,
            served=STUDIES,
        )

    async def ingest_until(
        self, sizes: dict[str, int], read_all: bool = False, **options: float
    ) -> dict[str, Ingester]:
        """Every study's ingester run side by side until each ledger of ``sizes`` holds
        that many entries (``read_all``: and every ledger's offsets reach the topic's end,
        every record read); then stopped, and a checkpoint signed in each."""
        ingesters = {study: self.ingester(study, **options) for study in STUDIES}
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(i.run(stopping)) for i in ingesters.values()]
        try:
            for study, size in sizes.items():
                ledger = self.ledgers[study]
                await eventually(partial(_holds, ledger, size), what=f"{study}'s ingest")
            for study, ledger in self.ledgers.items() if read_all else ():
                feed = Feed(self.settings, ledger)
                await eventually(partial(_read_all, feed), what=f"{study}'s reading")
        finally:
            stopping.set()
            await asyncio.gather(*tasks)
        for ingester in ingesters.values():
            if ingester.epoch is not None:
                await ingester.checkpoint()
        return ingesters


@pytest.fixture
async def studies(projections_settings: ServiceSettings) -> AsyncIterator[Studies]:
    origin = f"test.invalid/ledger/{uuid.uuid4().hex[:8]}"
    ledgers = study_ledgers(projections_settings.database, origin, STUDIES)
    try:
        for ledger in ledgers.values():
            await ledger.open()
        applications = {
            study: ProjectionsApplication(
                ledger, [CHECKPOINT_KEY.public_key()], record_keys=[RECORD_KEY.public_key()]
            )
            for study, ledger in ledgers.items()
        }
        yield Studies(projections_settings, origin, ledgers, applications)
    finally:
        for ledger in ledgers.values():
            if ledger._pool is not None:
                await ledger.close()
        await owner_sql(
            projections_settings,
            f'DROP SCHEMA IF EXISTS "{second_schema(projections_settings)}" CASCADE',
        )


def second_schema(settings: ServiceSettings) -> str:
    return study_schema(settings.database.schema, SECOND)


async def owner_sql(settings: ServiceSettings, sql: str) -> None:
    """``sql`` as the owner of the ledgers' tables (the service's own database user)."""
    connection = await asyncpg.connect(settings.database.dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def payloads(ledger: LedgerStore) -> list[bytes]:
    rows = await ledger.pool.fetch("SELECT payload FROM ledger_entries ORDER BY position")
    return [bytes(r["payload"]) for r in rows]


def test_the_first_study_keeps_its_schema_and_group_and_others_have_their_own() -> None:
    assert study_schema("projections", DEFAULT_STUDY_ID) == "projections"
    assert study_schema("public", SECOND) == "study_syn_cart_2"
    assert study_schema("projections", SECOND) == "projections_study_syn_cart_2"
    assert group_id(DEFAULT_STUDY_ID) == "trialledger-projections"
    assert group_id(SECOND) == "trialledger-projections.SYN-CART-2"


async def test_two_studies_records_land_in_two_ledgers_each_verifying_alone(
    studies: Studies, projections_settings: ServiceSettings
) -> None:
    first = published_events(subjects=2)
    second = of_study(published_events(subjects=2, prefix="C"), SECOND)
    unserved = of_study(published_events(subjects=1, prefix="X")[:1], "NCT-NOT-SERVED")
    mixed = [e for pair in zip(first, second, strict=False) for e in pair]
    mixed += first[len(second) :] + second[len(first) :]
    feed = Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID])
    await feed.publish([*unserved, *mixed])

    ingesters = await studies.ingest_until({DEFAULT_STUDY_ID: len(first), SECOND: len(second)})

    one, two = studies.ledgers[DEFAULT_STUDY_ID], studies.ledgers[SECOND]
    # each ledger holds its study's events, exactly as published, and nothing else
    assert sorted(await payloads(one)) == sorted(e.to_kafka_value() for e in first)
    assert sorted(await payloads(two)) == sorted(e.to_kafka_value() for e in second)
    assert not any(b'"studyid"' in p for p in await payloads(one))
    assert ingesters[SECOND].handled[OTHER_STUDY] == len(first) + len(unserved)
    # the record of a study served by no ledger here: the first ledger's dead letter
    assert [r["reason"] for r in await one.dead_letters()] == [
        "study 'NCT-NOT-SERVED' is not served here (TL_STUDIES): no ledger of this "
        "deployment is its"
    ]
    assert await two.dead_letters() == []
    # origins: the configured one for the first study, naming the study for the other
    assert (one.origin, two.origin) == (studies.origin, f"{studies.origin}/{SECOND}")
    for study, ledger in studies.ledgers.items():
        report = await studies.applications[study].verify_unattributed()
        assert report.ok, report.to_json()
        checkpoints = await ledger.checkpoints()
        assert all(c.note and c.note.splitlines()[0] == ledger.origin for c in checkpoints)
        assert checkpoints[-1].size == await ledger.size()
    # one study's checkpoints do not pass for the other's ledger
    as_first = Trust([CHECKPOINT_KEY.public_key()], one.origin)
    assert not (await check_ledger(two, as_first, None)).ok


async def test_a_record_keyed_otherwise_than_its_study_is_the_first_ledger_s_dead_letter(
    studies: Studies, projections_settings: ServiceSettings
) -> None:
    # the second study's ingester reads only keys SYN-CART-2/...: a record of its study
    # under another key is passed over unread, and the first study's keeps it, visibly
    first = published_events(subjects=1)
    second = of_study(published_events(subjects=1, prefix="C"), SECOND)
    stray = of_study(published_events(subjects=1, prefix="K")[:3], SECOND)
    keys = [b"K-001", b"NCT-NOT-SERVED/K-001", None]  # unprefixed, another study's, none
    feed = Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID])
    await feed.publish(first + second)
    await feed.produce([(k, e.to_kafka_value()) for k, e in zip(keys, stray, strict=True)])

    sizes = {DEFAULT_STUDY_ID: len(first), SECOND: len(second)}
    ingesters = await studies.ingest_until(sizes, read_all=True)
    one, two = studies.ledgers[DEFAULT_STUDY_ID], studies.ledgers[SECOND]
    assert sorted(await payloads(one)) == sorted(e.to_kafka_value() for e in first)
    assert sorted(await payloads(two)) == sorted(e.to_kafka_value() for e in second)
    dead = await one.dead_letters()
    assert {(r["record_key"], bytes(r["record_value"])) for r in dead} == {
        (k, e.to_kafka_value()) for k, e in zip(keys, stray, strict=True)
    }
    assert all("(its studyid): that study's ledger reads only keys" in r["reason"] for r in dead)
    assert await two.dead_letters() == []
    assert ingesters[SECOND].handled[OTHER_STUDY] == len(first) + len(stray)
    for study in STUDIES:
        report = await studies.applications[study].verify_unattributed()
        assert report.ok, report.to_json()


async def test_views_and_exports_of_one_study_hold_none_of_the_other(
    studies: Studies, projections_settings: ServiceSettings
) -> None:
    first = published_events(subjects=1)
    second = of_study(published_events(subjects=1, prefix="C"), SECOND)
    await Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID]).publish(first + second)
    await studies.ingest_until({DEFAULT_STUDY_ID: len(first), SECOND: len(second)})
    one, two = studies.applications[DEFAULT_STUDY_ID], studies.applications[SECOND]

    assert await one.subject(FIRST_AUDITOR, "S-001")
    assert not await one.subject(FIRST_AUDITOR, "C-001")
    assert await two.subject(SECOND_AUDITOR, "C-001")
    assert not await two.subject(SECOND_AUDITOR, "S-001")
    for application, own, other in ((one, "S-001", "C-001"), (two, "C-001", "S-001")):
        subjects = {
            row["subject_id"]
            for row in await application.views.pool.fetch("SELECT subject_id FROM subject_states")
        }
        assert subjects == {own}, subjects
        document = await application.export(FIRST_AUDITOR)
        assert {e["event"]["subject"] for e in document["entries"]} == {own}
        origin = application.ledger.origin
        trusted = TrustedKeys(
            checkpoint=[Verifier.of(origin, CHECKPOINT_KEY.public_key())],
            record=[RECORD_KEY.public_key()],
            origin=origin,
            full=True,
        )
        report = verify_export(document, trusted)
        assert report.ok, report.failures
        assert other not in json.dumps(document)


async def test_a_broken_study_ledger_holds_back_no_other_study(
    studies: Studies, projections_settings: ServiceSettings
) -> None:
    schema = second_schema(projections_settings)
    await owner_sql(
        projections_settings, f'REVOKE INSERT ON "{schema}".ledger_entries FROM ledger_writer'
    )
    first = published_events(subjects=2)
    second = of_study(published_events(subjects=1, prefix="C"), SECOND)
    await Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID]).publish(second + first)

    ingesters = {study: studies.ingester(study, stall_after=0.0) for study in STUDIES}
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(i.run(stopping)) for i in ingesters.values()]
    one, two = studies.ledgers[DEFAULT_STUDY_ID], studies.ledgers[SECOND]
    try:
        await eventually(lambda: _holds(one, len(first)), what="the first study's ingest")
        assert await two.size() == 0

        async def named() -> bool:  # once the study's own records are all that is left
            problem = (await ingesters[SECOND].problems())["ingest:SYN-CART-2"]
            return problem.startswith("stalled: ") and "InsufficientPrivilege" in problem

        await eventually(named, what="/ready naming the second study's fault")
        assert await ingesters[DEFAULT_STUDY_ID].problems() == {"ingest": "ok"}
        # mended, the second study catches up on its own
        grant = f'GRANT INSERT ON "{schema}".ledger_entries TO ledger_writer'
        await owner_sql(projections_settings, grant)
        await eventually(lambda: _holds(two, len(second)), what="the second study's ingest")
    finally:
        stopping.set()
        await asyncio.gather(*tasks)
    assert sorted(await payloads(two)) == sorted(e.to_kafka_value() for e in second)


@pytest.fixture
async def client(studies: Studies) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(studies.applications[DEFAULT_STUDY_ID], VERIFIER, studies=studies.applications)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://projections") as c:
        yield c


async def activity(ledger: LedgerStore) -> list[tuple[str, str, str]]:
    rows = await ledger.pool.fetch("SELECT user_id, action, outcome FROM auditor_activity")
    return [(r["user_id"], r["action"], r["outcome"]) for r in rows]


async def test_each_study_s_routes_answer_its_ledger_to_its_own_auditors_only(
    studies: Studies, projections_settings: ServiceSettings, client: httpx.AsyncClient
) -> None:
    first = published_events(subjects=1)
    second = of_study(published_events(subjects=1, prefix="C"), SECOND)
    await Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID]).publish(first + second)
    await studies.ingest_until({DEFAULT_STUDY_ID: len(first), SECOND: len(second)})
    prefix = f"/studies/{SECOND}"

    trail = await client.get(f"{prefix}/trail", headers=bearer(SECOND_AUDITOR))
    assert trail.status_code == 200
    assert {row["subject_id"] for row in trail.json()} == {"C-001"}
    unprefixed = await client.get("/trail", headers=bearer(FIRST_AUDITOR))
    named = await client.get(f"/studies/{DEFAULT_STUDY_ID}/trail", headers=bearer(FIRST_AUDITOR))
    assert {row["subject_id"] for row in unprefixed.json()} == {"S-001"}
    assert named.json() == unprefixed.json()
    public = (await client.get(f"{prefix}/checkpoints")).json()
    assert public["origin"] == f"{studies.origin}/{SECOND}"
    assert (await client.get(f"{prefix}/checkpoint")).text.startswith(public["origin"] + "\n")
    verified = await client.get(
        f"{prefix}/verify", params={"stores": "false"}, headers=bearer(SECOND_AUDITOR)
    )
    assert verified.status_code == 200 and verified.json()["ok"], verified.json()
    assert (
        await client.get(f"{prefix}/subjects/S-001", headers=bearer(SECOND_AUDITOR))
    ).json() == {}

    # a token for one study is refused the other's ledger, and the refusal recorded there
    for path, who, ledger in (
        ("/trail", SECOND_AUDITOR, studies.ledgers[DEFAULT_STUDY_ID]),
        (f"{prefix}/export", FIRST_AUDITOR, studies.ledgers[SECOND]),
    ):
        refused = await client.get(path, headers=bearer(who))
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "study_not_granted"
        assert (who.user_id, path.rsplit("/", 1)[-1], "denied") in await activity(ledger)
    missing = await client.get("/studies/NCT-NOT-SERVED/trail", headers=bearer(FIRST_AUDITOR))
    assert missing.status_code == 404
    assert missing.json()["code"] == "study_not_served"


def public_pem(path: Path, key: Ed25519PublicKey) -> str:
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)


async def test_the_cli_reads_the_ledger_of_the_study_named_with_a_token_for_it(
    studies: Studies,
    projections_settings: ServiceSettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first = published_events(subjects=1)
    second = of_study(published_events(subjects=1, prefix="C"), SECOND)
    await Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID]).publish(first + second)
    await studies.ingest_until({DEFAULT_STUDY_ID: len(first), SECOND: len(second)})
    schema = projections_settings.database.schema
    for name, value in {
        "TL_PROJECTIONS_DATABASE_SCHEMA": schema,
        "TL_STUDIES": ",".join(STUDIES),
        "TL_LEDGER_ORIGIN": studies.origin,
        "TL_TOKEN_PUBLIC_KEY_FILE": public_pem(tmp_path / "token.pub", TOKEN_KEY.public_key()),
        "TL_CHECKPOINT_PUBLIC_KEY_FILE": public_pem(
            tmp_path / "checkpoint.pub", CHECKPOINT_KEY.public_key()
        ),
    }.items():
        monkeypatch.setenv(name, value)

    def cli(who: Principal, *args: str) -> Result:
        token, _ = ISSUER.access_token(who, datetime.now(UTC))
        return CliRunner().invoke(cli_app, [*args, "--token", token], catch_exceptions=False)

    trail = await asyncio.to_thread(cli, SECOND_AUDITOR, "--study", SECOND, "trail", "--json")
    assert trail.exit_code == 0, trail.output
    assert {row["subject_id"] for row in json.loads(trail.stdout)} == {"C-001"}
    verify = ("--study", SECOND, "verify", "--no-stores")
    verified = await asyncio.to_thread(cli, SECOND_AUDITOR, *verify)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"]
    first_trail = await asyncio.to_thread(cli, FIRST_AUDITOR, "trail", "--json")
    assert {row["subject_id"] for row in json.loads(first_trail.stdout)} == {"S-001"}
    refused = await asyncio.to_thread(cli, FIRST_AUDITOR, "--study", SECOND, "trail")
    assert refused.exit_code == 2
    assert "is for study NCT05030779, not SYN-CART-2" in refused.output
    assert ("aud.kim", "cli", "denied") in await activity(studies.ledgers[SECOND])


async def test_a_study_s_verification_reads_only_its_events_from_the_shared_stores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = published_events(subjects=1)[:2]
    second = of_study(published_events(subjects=1, prefix="C")[:1], SECOND)
    stored = [*first, *second]
    asked: list[str] = []

    def store(request: httpx.Request) -> httpx.Response:
        """A store's API: unprefixed, every study's events; under a study, its own."""
        asked.append(str(request.url))
        prefixed = request.url.path.startswith(f"/studies/{SECOND}/")
        shown = [(n, e) for n, e in enumerate(stored, 1) if not prefixed or e in second]
        if request.url.path.endswith("/store/head"):
            return httpx.Response(200, json={"count": len(shown)})
        events = [
            {"position": n, "event_id": str(e.id), "event_type": e.type,
             "recorded_at": e.recordedtime.isoformat(), "payload": e.to_kafka_value().decode()}
            for n, e in shown
        ]  # fmt: skip
        return httpx.Response(200, json={"events": events, "next_after": None})

    def client(reader: StoreReader) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(store))

    monkeypatch.setattr(StoreReader, "_client", client)
    endpoint = StoreEndpoint("enrollment", "http://enrollment")
    for study, expected in ((SECOND, second), (DEFAULT_STUDY_ID, first), (None, stored)):
        reader = StoreReader([endpoint], "token", study_id=study)
        reading = await reader.events(StoreReading(endpoint), payload=False)
        assert [e.event_id for e in reading.events] == [str(e.id) for e in expected]
        assert all(study_of(e) == (study or study_of(e)) for e in reading.events)
    # another study's events come from its own routes, which filter them: ids suffice;
    # the first study's from the routes of every study's, named by their payload
    assert asked[0].startswith(f"http://enrollment/studies/{SECOND}/store/events?")
    assert "payload=false" in asked[0]
    assert asked[1].startswith("http://enrollment/store/events?") and "payload=true" in asked[1]
    assert "payload=false" in asked[-1]


async def test_a_console_session_shows_its_token_s_study_s_ledger_alone(
    studies: Studies, projections_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = published_events(subjects=1)
    second = of_study(published_events(subjects=1, prefix="C"), SECOND)
    await Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID]).publish(first + second)
    await studies.ingest_until({DEFAULT_STUDY_ID: len(first), SECOND: len(second)})
    asked: list[str] = []
    tokens = {"/login": FIRST_AUDITOR, f"/studies/{SECOND}/login": SECOND_AUDITOR}

    def identity(request: httpx.Request) -> httpx.Response:  # identity's login, per study
        asked.append(request.url.path)
        who = tokens.get(request.url.path)
        if who is None:
            return httpx.Response(404, json={"code": "not_found", "message": "no route"})
        token, _ = ISSUER.access_token(who, datetime.now(UTC))
        return httpx.Response(200, json={"access_token": token})

    def identity_client(**options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options, transport=httpx.MockTransport(identity))

    # the console's own httpx, its client talking to the fake identity above
    fake = SimpleNamespace(AsyncClient=identity_client, HTTPError=httpx.HTTPError)
    monkeypatch.setattr(console_module, "httpx", fake)
    config = ConsoleConfig(identity_url="http://identity", secure_cookie=False)
    app = create_app(
        studies.applications[DEFAULT_STUDY_ID], VERIFIER, None, config, studies.applications
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://projections"
    ) as client:
        login = await client.get("/console/login")
        assert f'<option value="{SECOND}">' in login.text
        for study, who, mine, theirs in (
            (SECOND, SECOND_AUDITOR, "C-001", "S-001"),
            ("", FIRST_AUDITOR, "S-001", "C-001"),  # the first study's, as before studies
        ):
            client.cookies.clear()
            logged = await client.post(
                "/console/login",
                data={"user_id": who.user_id, "password": "pw", "study": study},
                headers={"origin": "http://projections"},
            )
            assert logged.status_code == 303, logged.text
            trail = await client.get("/console/trail")
            assert trail.status_code == 200, trail.text
            assert mine in trail.text and theirs not in trail.text
            assert (f"Study {SECOND}" in trail.text) == (study == SECOND)
        assert asked == [f"/studies/{SECOND}/login", "/login"]
        # the pages are of the session's study at the same URLs: recorded in its ledger
        assert ("aud.lee", "console", "allowed") in await activity(studies.ledgers[SECOND])
        assert ("aud.lee", "console", "allowed") not in await activity(
            studies.ledgers[DEFAULT_STUDY_ID]
        )
        # a study not served is refused at login, a page, never a token asked for
        client.cookies.clear()
        unserved = await client.post(
            "/console/login",
            data={"user_id": "aud.lee", "password": "pw", "study": "NCT-NOT-SERVED"},
            headers={"origin": "http://projections"},
        )
        assert unserved.status_code == 404 and len(asked) == 2


def account_event(event_type: str, at: datetime, **data: Any) -> CloudEvent:
    """An identity event as identity envelopes it (the ingest checks the contract)."""
    contract = identity_contracts.IDENTITY_CONTRACTS[event_type]
    record = {"event_id": uuid.uuid4(), "subject_id": None, "record_type": "User",
              "record_id": uuid.uuid4(), "version": 1, "occurred_at": at, "recorded_at": at,
              "correlation_id": "c-1", "reason": "review",
              "source": {"service": "identity"}}  # fmt: skip
    return CloudEvent.wrap(contract.model_validate({**record, **data}), 1)


async def test_a_study_s_account_review_holds_the_grants_of_that_study_alone(
    studies: Studies, projections_settings: ServiceSettings, client: httpx.AsyncClient
) -> None:
    """As identity publishes them: creation and v1 grants without ``studyid`` (the first
    study's ledger), a v2 grant with the study's ``studyid`` (that study's ledger)."""
    at = datetime.now(UTC)
    actor = {
        "user_id": "ada.admin",
        "printed_name": "Ada",
        "role": "administrator",
        "site": "ZJU-1",
    }
    first = [
        account_event(
            "UserCreated.v1",
            at,
            actor=actor,
            user_id="lin.wei",
            printed_name="Lin Wei",
            site="ZJU-1",
            roles=["investigator"],
        ),
    ]
    second = of_study(
        [
            account_event(
                "RoleGranted.v2",
                at,
                actor=actor,
                user_id="lin.wei",
                study_id=SECOND,
                site="PUMCH-1",
                role="administrator",
            ),
            account_event(
                "RoleGranted.v2",
                at,
                actor=actor,
                user_id="lin.wei",
                study_id=SECOND,
                site="PUMCH-1",
                role="investigator",
            ),
        ],
        SECOND,
    )
    await Feed(projections_settings, studies.ledgers[DEFAULT_STUDY_ID]).publish(first + second)
    await studies.ingest_until({DEFAULT_STUDY_ID: len(first), SECOND: len(second)})

    one = (await client.get("/account-review", headers=bearer(FIRST_AUDITOR))).json()
    two = await client.get(f"/studies/{SECOND}/account-review", headers=bearer(SECOND_AUDITOR))
    assert two.status_code == 200, two.text
    assert one["accounts"] == [
        {"user_id": "lin.wei", "site": "ZJU-1", "roles": ["investigator"], "active": True}
    ]
    assert one["incompatible_roles"] == []
    assert two.json()["accounts"] == [
        {
            "user_id": "lin.wei",
            "site": "PUMCH-1",
            "roles": ["administrator", "investigator"],
            "active": None,
        }
    ]
    assert [a["user_id"] for a in two.json()["incompatible_roles"]] == ["lin.wei"]
