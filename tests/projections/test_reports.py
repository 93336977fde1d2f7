"""Reports are computed off the event loop. The endpoints, plots, safety summary and
exports take seconds of Python over a large ledger. While one is computed, the service's
other work must go on: its ingest, its views and its /ready answer on the same loop.

Each test makes the report's computation wait until the event loop has run other work.
A computation on the loop would wait for the loop it blocks, and fail after a while."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.projections import accounts, clinical_endpoints, merkle, odm, plots, sdtm
from services.projections import application as module
from services.projections.application import ProjectionsApplication, ReportsBusy
from shared.kernel.provenance import Role
from tests.support import principal

pytestmark = [pytest.mark.integration, pytest.mark.on_postgres]
AUDITOR = principal(Role.AUDITOR, user_id="aud.kim")
WAIT = 10.0  # seconds a computation waits for the loop before it says it blocked it

Report = Callable[[ProjectionsApplication], Awaitable[Any]]
REPORTS: dict[str, tuple[Any, str, Report]] = {
    # name: (module, function the report computes with, the report asked for)
    "endpoints": (clinical_endpoints.TrialHistory, "advance", lambda p: p.endpoints(AUDITOR)),
    "endpoints as of a position": (
        clinical_endpoints.TrialHistory,
        "advance",
        lambda p: p.endpoints(AUDITOR, position=3),
    ),
    "safety summary": (clinical_endpoints.TrialHistory, "advance", lambda p: p.trial(AUDITOR)),
    "swimmer plot": (plots, "swimmer_svg", lambda p: p.plot(AUDITOR, "swimmer")),
    "export": (module, "build_export", lambda p: p.export(AUDITOR)),
    "export's JSON text": (module, "_json_text", lambda p: p.export_json(AUDITOR)),
    "ODM": (odm, "odm_document", lambda p: p.odm(AUDITOR)),
    "SDTM": (sdtm, "sdtm_datasets", lambda p: p.sdtm(AUDITOR)),
    "account review": (accounts, "review", lambda p: p.account_review(AUDITOR, None)),
    "inclusion proof": (merkle, "inclusion_proof", lambda p: p.inclusion_proof(AUDITOR, 1)),
    "consistency proof": (merkle, "consistency_proof", lambda p: p.consistency_proof(AUDITOR, 1)),
}


@pytest.mark.parametrize("name", list(REPORTS))
async def test_a_report_leaves_the_event_loop_free(
    projections: ProjectionsApplication, filled: int, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    owner, function, report = REPORTS[name]
    started, loop_ran = threading.Event(), threading.Event()
    original = getattr(owner, function)

    def waiting(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert loop_ran.wait(WAIT), f"the {name} report was computed on the event loop"
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, function, waiting)

    async def other_work() -> None:
        assert await asyncio.to_thread(started.wait, WAIT)  # a thread: the loop stays free
        loop_ran.set()

    answer, _ = await asyncio.wait_for(asyncio.gather(report(projections), other_work()), 60)
    assert answer


async def test_the_export_as_json_text_is_the_export(
    projections: ProjectionsApplication, filled: int
) -> None:
    text = await projections.export_json(AUDITOR)
    assert json.loads(text) == await projections.export(AUDITOR)
    assert len(json.loads(text)["entries"]) == filled


async def test_reports_beyond_those_that_may_wait_are_refused(
    projections: ProjectionsApplication, filled: int
) -> None:
    """One report computes and ``REPORTS_WAITING`` wait: the next is refused at once
    (``overloaded``, with a time to ask again), and those taken are all answered."""
    release = threading.Event()
    taken = [
        asyncio.create_task(projections.reports.run(lambda: release.wait(30)))
        for _ in range(1 + module.REPORTS_WAITING)
    ]
    await asyncio.sleep(0)  # each task takes its place in the pool before its first await
    with pytest.raises(ReportsBusy) as refused:
        await projections.plot(AUDITOR, "swimmer")
    assert refused.value.details["retry_after_seconds"] > 0
    release.set()
    assert all(await asyncio.gather(*taken))
    assert (await projections.plot(AUDITOR, "swimmer")).lstrip().startswith(b"<")
