"""The auditor's console in a real browser: Debian's Chromium driven by Playwright against
the real stack (every service a process, on the real Kafka and PostgreSQL).

An auditor logs in, opens a subject and moves the as-of control, filters the trail and
exports it, opens proofs and sees them verified; a monitor is refused; axe-core finds no
serious or critical accessibility violation on any page. Each page's screenshot is written
to docs/images/console-*.png (docs/auditing.md shows them).

Chromium comes from Debian (``make browser``: ``deploy/local/infra.sh browser``) and
axe-core from npm (tests/browser/package-lock.json); Playwright's own browser download is
never used. Without them these tests fail, naming what is missing; they never skip.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Download, Page, async_playwright, expect

from services.projections.console import COOKIE
from tests.e2e.flows import PASSWORD, enrol, once_seen, site_team, treat
from tests.e2e.stack import Stack, shared_stack
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TL_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "tests/browser/node_modules/axe-core/axe.min.js"
SCREENSHOTS = ROOT / "docs/images"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking"]  # fmt: skip
TREATED, CORRECTED = "S-401", "S-402"
REASON = "version misread on the form"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The stack the e2e tests start, with an infused subject and a corrected one in the
    ledger and a checkpoint over them; the auditor aud.kim and the monitor mon.lee."""
    async with shared_stack(tmp_path_factory, "console") as services:
        team = await site_team(services)
        infused = await treat(team, TREATED, 1, days_ago=10)
        sample = {"sampled_at": (infused + timedelta(days=7)).isoformat(),
                  "sample": "peripheral_blood", "method": "qpcr", "target": "total",
                  "value": "5000", "unit": "copies/µg gDNA", "lloq": "50"}  # fmt: skip
        path = f"/subjects/{TREATED}/car-t-kinetics"
        await once_seen(lambda: services.assessments.post(path, json=sample,
                                                          headers=team.investigator),
                        201, "the assessments service seeing the infusion")  # fmt: skip
        await enrol(services, team.investigator, CORRECTED, None)
        correction = {"field": "consent.form_version", "new_value": "ICF v2.2", "reason": REASON}
        answer = await services.enrollment.post(
            f"/subjects/{CORRECTED}/corrections", json=correction, headers=team.investigator
        )
        assert answer.status_code in (200, 201), answer.text
        await services.create_user("aud.kim", PASSWORD, "auditor")
        await services.create_user("mon.lee", PASSWORD, "monitor")
        await in_ledger_and_checkpointed(services, await services.log_in("aud.kim", PASSWORD))
        yield services


async def in_ledger_and_checkpointed(stack: Stack, auditor: dict[str, str]) -> None:
    async def seen() -> bool:
        rows = (await stack.projections.get("/trail", params={"reason": "misread"},
                                            headers=auditor)).json()  # fmt: skip
        size = (await stack.projections.get("/checkpoints")).json()["checkpoints"]
        entries = (await stack.projections.get("/trail", headers=auditor)).json()
        last = max((r["position"] for r in entries), default=0)
        return bool(rows) and bool(size) and size[-1]["size"] >= last

    await eventually(seen, timeout=60, what="the correction in the ledger and checkpointed")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    for needed in (Path(CHROMIUM), AXE):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: run make browser (deploy/local/infra.sh browser)",
                        pytrace=False)  # fmt: skip
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        await chromium.close()


def console(stack: Stack, path: str = "") -> str:
    return f"{stack.projections.base_url}".rstrip("/") + f"/console/{path}"


async def logged_in(browser: Browser, stack: Stack, user_id: str, password: str = PASSWORD) -> Page:
    # bypass_csp: axe-core is injected as an inline script, which the console's CSP forbids
    context = await browser.new_context(accept_downloads=True, bypass_csp=True)
    page = await context.new_page()
    await page.goto(console(stack, "login"))
    await page.get_by_label("User id").fill(user_id)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    return page


async def accessible(page: Page, name: str) -> None:
    """No serious or critical axe-core violation; the page's screenshot kept for the docs."""
    await page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = await page.evaluate("axe.run(document)")
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
           for v in results["violations"] if v["impact"] in ("serious", "critical")]  # fmt: skip
    assert bad == [], f"{name}: {bad}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


async def text_of(download: Download) -> str:
    return await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8")


async def test_an_auditor_logs_in_and_sees_the_trial(browser: Browser, stack: Stack) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Trial")
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == COOKIE]
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
    await expect(page.get_by_role("link", name=TREATED).first).to_be_visible()
    swimmer = page.get_by_role("img", name="Swimmer plot", exact=False)
    await expect(swimmer).to_be_visible()
    assert await swimmer.evaluate("image => image.naturalWidth") > 0
    kinetics = page.get_by_role("img", name=f"CAR-T kinetics of {TREATED}", exact=False)
    await expect(kinetics).to_be_visible()
    assert await kinetics.evaluate("image => image.naturalWidth") > 0
    endpoints = page.get_by_role("table", name="The trial's endpoints")
    orr = endpoints.get_by_role("row", name="objective response rate 3 months", exact=False)
    await expect(orr).to_contain_text("complete or partial remission by day 90")
    await accessible(page, "trial")


async def test_the_as_of_control_changes_the_subject_s_state(
    browser: Browser, stack: Stack
) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    await page.locator("#nav-subject").fill(CORRECTED)
    await page.get_by_role("button", name="Open").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Subject {CORRECTED}")
    state = page.locator("#state")
    await expect(state).to_contain_text("ICF v2.2")
    await expect(page.get_by_text(REASON).first).to_be_visible()
    await expect(page.get_by_text("Signed by").first).to_be_visible()
    await accessible(page, "subject")
    consent = await page.locator("h3", has_text="ConsentSigned").first.get_attribute("id")
    assert consent is not None
    await page.get_by_label("As of ledger position").select_option(consent.split("-")[1])
    await page.get_by_role("button", name="Show state").click()
    await expect(page.get_by_role("heading", name="State as of position")).to_be_visible()
    await expect(state).to_contain_text("ICF v2.1")
    await expect(state).not_to_contain_text("ICF v2.2")


async def test_the_trail_is_filtered_and_exported_row_for_row(
    browser: Browser, stack: Stack
) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    await page.get_by_role("link", name="Audit trail").click()
    await page.locator("#f-subject").fill(CORRECTED)
    await page.get_by_label("Reason contains").fill("misread")
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("#trail tbody tr")
    await expect(rows.first).to_contain_text(REASON)
    shown = await rows.count()
    await accessible(page, "trail")
    async with page.expect_download() as csv_download:
        await page.get_by_role("link", name="CSV").click()
    exported = list(csv.DictReader(io.StringIO(await text_of(await csv_download.value))))
    assert len(exported) == shown
    assert {(r["subject_id"], r["reason"]) for r in exported} == {(CORRECTED, REASON)}
    async with page.expect_download() as json_download:
        await page.get_by_role("link", name="JSON").click()
    as_json = json.loads(await text_of(await json_download.value))
    assert [r["position"] for r in as_json] == [int(r["position"]) for r in exported]


async def test_a_review_report_opens_the_trail_filtered(browser: Browser, stack: Stack) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    await page.get_by_role("link", name="Review reports").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Review reports")
    await accessible(page, "reviews")
    await page.get_by_role("link", name="Corrections and their reasons").click()
    await expect(page.get_by_label("Event type")).to_have_value("ValueCorrected.v1")
    rows = page.locator("#trail tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(REASON)


async def test_proofs_are_shown_verified(browser: Browser, stack: Stack) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    await page.get_by_role("link", name="Integrity").click()
    await page.get_by_label("Ledger position").fill("2")
    await page.get_by_role("button", name="Prove inclusion").click()
    await expect(page.locator("#inclusion-result")).to_contain_text("verified")
    await expect(page.locator("#inclusion-result .ok")).to_have_text("verified")
    await page.get_by_label("Old size").fill("1")
    await page.get_by_role("button", name="Prove consistency").click()
    await expect(page.locator("#consistency-result .ok")).to_have_text("verified")
    await page.get_by_label("Verify the ledger and every store").check()
    await page.get_by_role("button", name="Run").click()
    await expect(page.locator("#verify-result .ok")).to_have_text("ok")
    stores = page.get_by_role("table", name="Each service's store against the ledger")
    await expect(stores.locator("tbody tr")).to_have_count(5)
    await expect(stores).to_contain_text("enrollment")
    await accessible(page, "integrity")


async def test_a_monitor_is_refused_with_the_reason(browser: Browser, stack: Stack) -> None:
    page = await logged_in(browser, stack, "mon.lee")
    await expect(page.get_by_role("alert")).to_contain_text(
        "role_not_permitted: mon.lee may not console: auditor only"
    )
    await expect(page.get_by_text("for accounts with the auditor role")).to_be_visible()
    await accessible(page, "refused")


async def test_a_wrong_password_is_answered_on_the_login_page(
    browser: Browser, stack: Stack
) -> None:
    page = await logged_in(browser, stack, "aud.kim", "not the passphrase")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    await expect(page.get_by_role("alert")).to_be_visible()
    assert [c for c in await page.context.cookies() if c["name"] == COOKIE] == []


async def test_a_session_withdrawn_elsewhere_shows_why_and_asks_to_log_in_again(
    browser: Browser, stack: Stack
) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == COOKIE]
    ended = await stack.identity.post(
        "/logout", headers={"authorization": f"Bearer {cookie['value']}"}
    )
    assert ended.status_code == 204, ended.text

    async def refused() -> bool:
        answer = await page.goto(console(stack, "trail"))
        return answer is not None and answer.status == 401

    await eventually(refused, timeout=30, what="the console refusing the withdrawn session")
    await expect(page.get_by_role("alert")).to_contain_text("token_revoked")
    await page.get_by_role("link", name="Log in again").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


async def test_after_logging_out_the_pages_ask_to_log_in(browser: Browser, stack: Stack) -> None:
    page = await logged_in(browser, stack, "aud.kim")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    await accessible(page, "login")
    await page.goto(console(stack, "trail"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
