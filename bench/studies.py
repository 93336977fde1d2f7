"""Many studies side by side: throughput, p99 latency and ledger lag per study as the
number of studies grows.

    python -m bench.studies [--studies 1,5,20] [--sites 2] [--commands 40]

For each count N the real stack runs as processes (every service, each relay, the
ledger's ingesters), as the end-to-end tests start it (``tests/e2e/stack.py``), on the
broker and database of deploy/local, serving N studies: the first study and N-1
synthetic copies of SYN-CART-2 (``SYN-BENCH-01`` ...) written into a ``TL_STUDIES_DIR``
for the run. Each study gets an administrator (``bootstrap-study-admin``) and ``--sites``
coordinators, one per site, each logged in for that study alone; then every site of
every study registers subjects through enrollment's HTTP API at once, ``--commands`` per
study. Per study the benchmark reports the registrations' throughput and p99 latency and
the ledger lag (from a registration's 201 until its subject is in that study's ledger
view), and per N the totals.

Baseline, in the same run: the figures with one study (N = 1, the first in the list).
The rows give each N's aggregate throughput, median per-study p99 and ledger lag p99 as
multiples of N = 1's: the cost curve of serving more studies on one stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench.common import parser, progress
from services.projections.studies import study_schema
from shared.study import DEFAULT_STUDY_ID
from tests.e2e.stack import ADMIN, ADMIN_PASSWORD, Stack, running_stack

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "SYN-CART-2"  # the synthetic study the bench's studies copy
WATCH = 0.02  # seconds between looks at the ledgers' views
PASSWORD = secrets.token_urlsafe(18)  # the bench accounts' own, never reused


@dataclass
class StudyRun:
    """What one study's sites did, and when its ledger showed it."""

    study_id: str
    accepted: dict[str, float] = field(default_factory=dict)  # subject -> its 201
    latencies: list[float] = field(default_factory=list)  # request -> 201, seconds
    seen: dict[str, float] = field(default_factory=dict)  # subject -> in the ledger view
    started: float = 0.0
    finished: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.accepted) / max(self.finished - self.started, 1e-9)

    @property
    def lags(self) -> list[float]:
        return [self.seen[s] - self.accepted[s] for s in self.accepted if s in self.seen]


def write_studies(folder: Path, count: int) -> list[str]:
    """The first study and ``count`` - 1 copies of the template under new ids."""
    text = (ROOT / "studies" / TEMPLATE / "definition.json").read_text("utf-8")
    studies = [DEFAULT_STUDY_ID]
    for n in range(1, count):
        study_id = f"SYN-BENCH-{n:02d}"
        (folder / study_id).mkdir(parents=True, exist_ok=True)
        definition = json.loads(text)
        definition["study_id"] = study_id
        definition["title"] = f"SYNTHETIC benchmark study {n} (a copy of {TEMPLATE})"
        (folder / study_id / "definition.json").write_text(json.dumps(definition), "utf-8")
        studies.append(study_id)
    return studies


async def study_sessions(stack: Stack, study_id: str, sites: int) -> list[dict[str, str]]:
    """``sites`` coordinators of ``study_id``, one per site, each logged in for it."""
    first = await stack.log_in(ADMIN, ADMIN_PASSWORD)
    tag = study_id.lower().replace("-", "")
    coordinators = [f"co.{tag}.{n}" for n in range(sites)]
    if study_id == DEFAULT_STUDY_ID:
        for user in coordinators:
            await stack.create_user(user, PASSWORD, "study_coordinator", admin=first)
        return [await stack.log_in(user, PASSWORD) for user in coordinators]
    admin = await stack.study_admin(study_id, f"adm.{tag}", PASSWORD)
    for n, user in enumerate(coordinators):
        await stack.create_user(user, PASSWORD, admin=first)
        body = {"role": "study_coordinator", "site": f"SITE-{n}", "reason": "benchmark"}
        answer = await stack.identity.post(
            f"/studies/{study_id}/users/{user}/roles", json=body, headers=admin
        )
        if answer.status_code != 200:
            raise RuntimeError(f"grant in {study_id}: {answer.text}")
    return [await study_login(stack, study_id, user) for user in coordinators]


async def study_login(stack: Stack, study_id: str, user_id: str) -> dict[str, str]:
    return await stack.study_log_in(study_id, user_id, PASSWORD)


async def register(
    client: httpx.AsyncClient, run: StudyRun, session: dict[str, str], subjects: list[str]
) -> None:
    prefix = "" if run.study_id == DEFAULT_STUDY_ID else f"/studies/{run.study_id}"
    for subject in subjects:
        asked = time.perf_counter()
        answer = await client.post(
            f"{prefix}/subjects", json={"subject_id": subject, "site_id": "SITE-0"},
            headers=session,
        )  # fmt: skip
        if answer.status_code != 201:
            raise RuntimeError(f"registration {run.study_id}/{subject}: {answer.text}")
        run.accepted[subject] = time.perf_counter()
        run.latencies.append(run.accepted[subject] - asked)


async def watch_ledgers(stack: Stack, runs: list[StudyRun], done: asyncio.Event) -> None:
    """Note when each accepted subject appears in its study's ledger view."""
    database = stack.projections_settings.database
    connection = await asyncpg.connect(database.dsn)
    try:
        while not (done.is_set() and all(len(r.seen) == len(r.accepted) for r in runs)):
            for run in runs:
                waiting = [s for s in run.accepted if s not in run.seen]
                if not waiting:
                    continue
                rows = await connection.fetch(
                    f"SELECT subject_id FROM {view_table(database.schema, run.study_id)} "  # noqa: S608
                    "WHERE subject_id = ANY($1::text[])",
                    waiting,
                )
                now = time.perf_counter()
                run.seen.update((r["subject_id"], now) for r in rows)
            await asyncio.sleep(WATCH)
    finally:
        await connection.close()


def view_table(schema: str, study_id: str) -> str:
    """The subject view of ``study_id``'s ledger in the projections database."""
    return f'"{study_schema(schema, study_id)}".subject_states'


async def one_count(count: int, sites: int, commands: int) -> list[StudyRun]:
    with tempfile.TemporaryDirectory() as folder:
        studies = write_studies(Path(folder) / "studies", count)
        env = {**os.environ, "TL_STUDIES": ",".join(studies),
               "TL_STUDIES_DIR": str(Path(folder) / "studies")}  # fmt: skip
        progress(f"{count} studies: starting the stack")
        async with running_stack(env, Path(folder)) as stack:
            sessions = {s: await study_sessions(stack, s, sites) for s in studies}
            runs = [StudyRun(s) for s in studies]
            done = asyncio.Event()
            watcher = asyncio.create_task(watch_ledgers(stack, runs, done))
            tag = uuid.uuid4().hex[:5].upper()
            progress(f"{count} studies x {sites} sites: {commands} registrations per study")

            async def study(run: StudyRun) -> None:
                run.started = time.perf_counter()
                subjects = [f"B-{tag}-{k:04d}" for k in range(commands)]
                await asyncio.gather(*(
                    register(stack.enrollment, run, session, subjects[n::sites])
                    for n, session in enumerate(sessions[run.study_id])
                ))  # fmt: skip
                run.finished = time.perf_counter()

            await asyncio.gather(*(study(run) for run in runs))
            done.set()
            try:
                await asyncio.wait_for(watcher, 120)
            except TimeoutError:
                missing = sum(len(r.accepted) - len(r.seen) for r in runs)
                raise RuntimeError(f"{missing} registrations not in a ledger after 120 s") from None
    return runs


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def report(results: dict[int, list[StudyRun]]) -> None:
    print(f"{'studies':>7} {'study':<14} {'commands':>8} {'per s':>8} {'p99 ms':>8} "
          f"{'lag p50 ms':>10} {'lag p99 ms':>10}")  # fmt: skip
    for count, runs in results.items():
        for run in runs:
            lags = run.lags
            print(f"{count:>7} {run.study_id:<14} {len(run.accepted):>8} {run.throughput:>8.1f} "
                  f"{p99(run.latencies) * 1000:>8.1f} {statistics.median(lags) * 1000:>10.1f} "
                  f"{p99(lags) * 1000:>10.1f}")  # fmt: skip
    base = _totals(next(iter(results.values())))
    print(f"\n{'studies':>7} {'total per s':>11} {'x base':>7} {'median p99 ms':>13} {'x base':>7} "
          f"{'lag p99 ms':>10} {'x base':>7}")  # fmt: skip
    for count, runs in results.items():
        total, latency, lag = _totals(runs)
        print(f"{count:>7} {total:>11.1f} {total / base[0]:>7.2f} {latency * 1000:>13.1f} "
              f"{latency / base[1]:>7.2f} {lag * 1000:>10.1f} {lag / base[2]:>7.2f}",
              flush=True)  # fmt: skip


def _totals(runs: list[StudyRun]) -> tuple[float, float, float]:
    """Aggregate throughput, the median of the studies' p99s, and the lag p99 of all."""
    span = max(r.finished for r in runs) - min(r.started for r in runs)
    total = sum(len(r.accepted) for r in runs) / max(span, 1e-9)
    latency = statistics.median(p99(r.latencies) for r in runs)
    return total, latency, p99([lag for r in runs for lag in r.lags])


async def run(counts: list[int], sites: int, commands: int) -> None:
    results = {count: await one_count(count, sites, commands) for count in counts}
    report(results)


if __name__ == "__main__":
    arguments = parser(__doc__ or "", "--commands", 40)
    arguments.add_argument("--studies", default="1,5,20", help="counts of studies (1,5,20)")
    arguments.add_argument("--sites", type=int, default=2, help="sites per study (default 2)")
    given = arguments.parse_args()
    counts = [int(n) for n in given.studies.split(",")]
    asyncio.run(run(counts, given.sites, given.commands))
