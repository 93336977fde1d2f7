"""The auditor's console over HTTP (httpx's ASGI transport) on a real ledger: auditors only,
every page view recorded through the reads' one path, every refusal a page (never a 500),
and the pages show what the application's reads answer. The browser test is
tests/browser/test_console.py."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from markupsafe import escape

from services.projections.api import create_app
from services.projections.application import ProjectionsApplication, TrailFilter, WorkingHours
from services.projections.clinical_endpoints import DEFINITIONS, definition_of, endpoint_rules
from services.projections.config import ConsoleConfig
from services.projections.console import COOKIE
from services.projections.domain import Checkpoint
from services.projections.ledger import LedgerStore
from shared.kernel.errors import InvalidValue
from shared.kernel.principals import RevocationsUnconfirmed, TokenRevoked
from shared.kernel.provenance import Role
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import Principal
from tests.support import ISSUER, VERIFIER, free_port, principal

pytestmark = pytest.mark.integration
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")
MONITOR = principal(Role.MONITOR, user_id="mon.lee")
HOST = "http://projections"


class Refusing:
    """A revocation gate that refuses every token with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def admit(self, principal: Principal) -> None:
        raise self.error


def app_of(
    projections: ProjectionsApplication, gate: Refusing | None = None, secure: bool = True
) -> httpx.AsyncClient:
    # identity at a port nothing listens on: logins cannot reach it
    config = ConsoleConfig(identity_url=f"http://127.0.0.1:{free_port()}", secure_cookie=secure)
    app = create_app(projections, VERIFIER, gate, config)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HOST)


@pytest.fixture
async def client(projections: ProjectionsApplication) -> AsyncIterator[httpx.AsyncClient]:
    async with app_of(projections) as c:
        yield c


def session(who: Principal) -> dict[str, str]:
    token, _ = ISSUER.access_token(who, datetime.now(UTC))
    return {"cookie": f"{COOKIE}={token}"}


async def page(
    client: httpx.AsyncClient, path: str, who: Principal = AUDITOR, **params: str | int
) -> httpx.Response:
    """``path`` read in ``who``'s console session (a fresh token: one made at import expires
    before a long run reaches here)."""
    return await client.get(path, params=params, headers=session(who))


async def activity(ledger: LedgerStore) -> list[tuple[str, str, str]]:
    rows = await ledger.pool.fetch(
        "SELECT user_id, action, outcome FROM auditor_activity ORDER BY id"
    )
    return [(r["user_id"], r["action"], r["outcome"]) for r in rows]


async def test_without_a_session_a_page_sends_the_browser_to_log_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/console/trail")
    assert (response.status_code, response.headers["location"]) == (303, "/console/login")


@pytest.mark.part11("11.10(e)")
async def test_a_page_view_is_recorded_with_the_reads_it_made(
    filled: int, client: httpx.AsyncClient, ledger: LedgerStore
) -> None:
    response = await page(client, "/console/subjects/S-001")
    assert response.status_code == 200, response.text
    assert await activity(ledger) == [
        ("aud.kim", "console", "allowed"),
        ("aud.kim", "subject", "allowed"),
        ("aud.kim", "trail", "allowed"),
    ]


async def test_a_monitor_is_refused_the_console_with_a_page_and_the_refusal_recorded(
    filled: int, client: httpx.AsyncClient, ledger: LedgerStore
) -> None:
    response = await page(client, "/console/trial", MONITOR)
    assert response.status_code == 403
    assert "role_not_permitted" in response.text and "auditor" in response.text
    assert await activity(ledger) == [("mon.lee", "console", "denied")]


async def test_a_forged_session_is_a_401_page_that_clears_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/console/trial", headers={"cookie": f"{COOKIE}=forged"})
    assert (response.status_code, "unauthenticated" in response.text) == (401, True)
    assert f'{COOKIE}=""' in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (TokenRevoked("access withdrawn by RoleRevoked.v1"), 401, "token_revoked"),
        (RevocationsUnconfirmed("cannot confirm withdrawals"), 503, "revocations_unconfirmed"),
    ],
)
async def test_withdrawn_or_unconfirmed_access_shows_a_page_never_a_500(
    projections: ProjectionsApplication, error: Exception, status: int, code: str
) -> None:
    async with app_of(projections, Refusing(error)) as client:
        response = await page(client, "/console/trial")
    assert response.status_code == status
    assert code in response.text and "<html" in response.text


async def test_a_login_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    body = {"user_id": "aud.kim", "password": "x"}
    for origin in ({}, {"origin": "http://evil.example"}):
        response = await client.post("/console/login", data=body, headers=origin)
        assert (response.status_code, "cross_origin" in response.text) == (403, True)


async def test_a_login_identity_does_not_answer_is_a_503_page(client: httpx.AsyncClient) -> None:
    body = {"user_id": "aud.kim", "password": "x"}
    response = await client.post("/console/login", data=body, headers={"origin": HOST})
    assert response.status_code == 503 and "did not answer" in response.text


@pytest.mark.parametrize("secure", [True, False])
async def test_logout_clears_the_cookie_as_it_was_set(
    projections: ProjectionsApplication, secure: bool
) -> None:
    async with app_of(projections, secure=secure) as client:
        headers = {"origin": HOST, **session(AUDITOR)}
        response = await client.post("/console/logout", headers=headers)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert f'{COOKIE}=""' in cookie and ("; secure" in cookie.lower()) == secure
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


async def test_the_subject_as_of_an_earlier_position_shows_the_earlier_state(
    filled: int, client: httpx.AsyncClient
) -> None:
    now = await page(client, "/console/subjects/S-001")
    first = await page(client, "/console/subjects/S-001", position=1)
    assert "enrolled" in now.text and "enrolled" not in first.text.split("Events, in")[0]


async def test_a_bad_as_of_is_a_coded_4xx_page(filled: int, client: httpx.AsyncClient) -> None:
    for params in ({"position": "seven"}, {"as_of": "yesterday"}, {"as_of": "2026-11-01T10:00"}):
        response = await page(client, "/console/subjects/S-001", AUDITOR, **params)
        assert 400 <= response.status_code < 500 and "invalid_value" in response.text


async def test_the_trail_export_holds_exactly_the_filtered_rows_of_every_page(
    filled: int, client: httpx.AsyncClient, projections: ProjectionsApplication
) -> None:
    shown = await page(client, "/console/trail", subject_id="S-002", reason="notes")
    assert shown.status_code == 200 and "found in notes" in shown.text
    exported = await page(client, "/console/trail.csv", subject_id="S-002", reason="notes")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows and {(r["subject_id"], r["reason"]) for r in rows} == {("S-002", "found in notes")}
    as_json = (await page(client, "/console/trail.json", subject_id="S-002", reason="NOTES")).json()
    assert [r["position"] for r in as_json] == [int(r["position"]) for r in rows]


async def test_the_trail_pages_by_offset(filled: int, client: httpx.AsyncClient) -> None:
    first = await page(client, "/console/trail", limit=5)
    assert "Rows 1 to 5<" in first.text and 'offset=5"' in first.text
    second = await page(client, "/console/trail", limit=5, offset=5)
    assert "Rows 6 to 10<" in second.text and 'rel="prev"' in second.text


async def test_an_inclusion_and_a_consistency_proof_are_shown_verified(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await page(client, "/console/integrity", position=3, old_size=2)
    assert response.status_code == 200, response.text
    assert response.text.count('class="ok">verified') == 2


async def test_the_integrity_page_reads_the_latest_checkpoint_not_the_history(
    filled: int,
    client: httpx.AsyncClient,
    projections: ProjectionsApplication,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkpoint every 100 entries: a million-entry ledger's history is 10,000 notes."""
    latest = await projections.latest_checkpoint()
    assert latest is not None

    async def refused(after: int = 0, limit: int | None = None) -> list[Checkpoint]:
        raise AssertionError(f"read the checkpoints after {after}, {limit} at most")

    monkeypatch.setattr(projections.ledger, "checkpoints", refused)
    response = await page(client, "/console/integrity")
    assert response.status_code == 200, response.text
    assert str(latest.size) in response.text and latest.root.hex() in response.text


async def test_a_proof_beyond_the_checkpoint_is_a_404_page(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await page(client, "/console/integrity", position=filled + 1)
    assert (response.status_code, "not_in_checkpoint" in response.text) == (404, True)


def hours_between(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() / 3600


def outside(recorded: str, zone: str, start: int, end: int) -> bool:
    local = datetime.fromisoformat(recorded).astimezone(ZoneInfo(zone))
    return local.isoweekday() >= 6 or not start <= local.hour < end


Row = dict[str, Any]
Choice = tuple[TrailFilter, Callable[[Row], bool]]


def entered_late(every: list[Row]) -> Choice:
    """Late by at least the middle row's delay: some rows are, some are not."""
    late = sorted(hours_between(r["recorded_at"], r["occurred_at"]) for r in every)
    at_least = late[len(late) // 2]
    return TrailFilter(
        entered_late_hours=at_least
    ), lambda r: hours_between(r["recorded_at"], r["occurred_at"]) >= at_least


def signed_late(every: list[Row]) -> Choice:
    signed = [r for r in every if r["signed_at"] is not None]
    late = sorted(hours_between(r["signed_at"], r["recorded_at"]) for r in signed)
    at_least = late[len(late) // 2]
    return (
        TrailFilter(signed_late_hours=at_least),
        lambda r: (
            r["signed_at"] is not None
            and (hours_between(r["signed_at"], r["recorded_at"]) >= at_least)
        ),
    )


def outside_the_hour_of_the_first(every: list[Row]) -> Choice:
    """Working hours of one hour, the first row's: rows recorded in another hour (or on a
    weekend) are outside them."""
    local = datetime.fromisoformat(every[0]["recorded_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    hours = WorkingHours(local.hour, local.hour + 1, "Asia/Tokyo")
    return TrailFilter(outside=hours), lambda r: outside(
        r["recorded_at"], "Asia/Tokyo", hours.start, hours.end
    )


def two_types(every: list[Row]) -> Choice:
    types = ("ValueCorrected.v1", "ConsentSigned.v1")
    return TrailFilter(event_type=",".join(types)), lambda r: r["event_type"] in types


@pytest.mark.parametrize("choose", [entered_late, signed_late, two_types])
async def test_a_review_filter_selects_exactly_the_rows_it_names(
    filled: int, projections: ProjectionsApplication, choose: Callable[[list[Row]], Choice]
) -> None:
    every = await projections.trail(AUDITOR, TrailFilter(limit=10_000))
    filters, expected = choose(every)
    found = await projections.trail(AUDITOR, replace(filters, limit=10_000))
    assert [(r["position"], r["seq"]) for r in found] == [
        (r["position"], r["seq"]) for r in every if expected(r)
    ]
    assert 0 < len(found) < len(every)  # the filter told rows apart


async def test_the_outside_hours_filter_uses_the_zone_s_local_hour(
    filled: int, projections: ProjectionsApplication
) -> None:
    every = await projections.trail(AUDITOR, TrailFilter(limit=10_000))
    filters, expected = outside_the_hour_of_the_first(every)
    found = await projections.trail(AUDITOR, replace(filters, limit=10_000))
    assert [r["position"] for r in found] == [r["position"] for r in every if expected(r)]
    assert every[0] not in found or expected(every[0])
    around = replace(filters, outside=WorkingHours(0, 24, "Asia/Tokyo"), limit=10_000)
    weekend = datetime.fromisoformat(every[0]["recorded_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert bool(await projections.trail(AUDITOR, around)) == (weekend.isoweekday() >= 6)


async def test_the_review_reports_open_the_trail_with_their_filters(
    filled: int, client: httpx.AsyncClient
) -> None:
    reports = await page(client, "/console/reviews")
    assert reports.status_code == 200
    for link in ("event_type=ValueCorrected.v1", "outside_hours=8-18", "entered_late_hours=72"):
        assert link in reports.text
    corrections = await page(client, "/console/trail", event_type="ValueCorrected.v1")
    rows = corrections.text.split("<tbody>")[1]
    assert "found in notes" in rows and "ConsentSigned.v1" not in rows


@pytest.mark.parametrize(
    "params",
    [{"outside_hours": "18-8"}, {"outside_hours": "8-18", "zone": "Mars/Olympus"},
     {"entered_late_hours": "-1"}, {"signed_late_hours": "soon"}],
)  # fmt: skip
async def test_a_bad_review_filter_is_a_coded_4xx_page(
    filled: int, client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await page(client, "/console/trail", AUDITOR, **params)
    assert 400 <= response.status_code < 500 and "invalid_value" in response.text


async def test_the_trial_page_shows_each_endpoint_beside_its_definition(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await page(client, "/console/trial")
    assert response.status_code == 200, response.text
    # the first study's days written into the two definitions that name them
    calendar = endpoint_rules(DEFAULT_STUDY_ID).calendar
    days = {"last_study_day": calendar.response_last_day,
            "first_study_day": calendar.disease_control_first_day}  # fmt: skip
    for name in DEFINITIONS:
        definition = definition_of(name, days)
        assert str(escape(definition)) in response.text, definition


async def test_a_kinetics_plot_of_a_subject_without_kinetics_is_a_404_page(
    filled: int, client: httpx.AsyncClient
) -> None:
    response = await page(client, "/console/trial/kinetics/S-001.svg")
    assert (response.status_code, "plot_not_found" in response.text) == (404, True)


async def test_a_zone_the_database_does_not_know_is_refused_not_a_failure(
    filled: int, projections: ProjectionsApplication
) -> None:
    nowhere = TrailFilter(outside=WorkingHours(8, 18, "Nowhere/Nothing"))
    with pytest.raises(InvalidValue, match="Nowhere/Nothing"):
        await projections.trail(AUDITOR, nowhere)
