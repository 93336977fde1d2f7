"""The auditor's console: server-rendered pages (Jinja2) under ``/console/`` over the same
application methods the API calls (docs/auditing.md, "Console").

Thin: a page reads its query string, admits the session cookie's token exactly as the API
admits a bearer token (``api.admitted``), records the page view through the one path every
read is recorded by (``ProjectionsApplication.authorise``, action ``console``: auditors
only), then calls the application's reads, which record themselves as the API's do.

Sessions: the identity service's access token, in a ``Secure``, ``HttpOnly``,
``SameSite=Strict`` cookie. A token is for one study, and a session shows the ledger of its
token's study alone, at the same URLs: where several studies are served, the login page
asks which (``POST /studies/<id>/login`` at identity; the first study's: ``POST /login``).
The only state-changing requests are the login and logout POSTs; they must carry an
``Origin`` header naming this service (CSRF).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.projections import merkle
from services.projections.api import holder, study_application
from services.projections.application import ProjectionsApplication, TrailFilter, WorkingHours
from services.projections.clinical_endpoints import DEFINITIONS, definition_of
from services.projections.config import ConsoleConfig
from shared.contracts.enrollment import ValueCorrectedV1
from shared.contracts.identity import AccountLockedV1, LoginFailedV1, SigningFailedV1
from shared.contracts.security import AccessDeniedV1, AccessDeniedV2
from shared.kernel.errors import InvalidValue
from shared.kernel.principals import Unauthenticated
from shared.study import DEFAULT_STUDY_ID
from shared.web.auth import Principal
from shared.web.http import status_of

log = logging.getLogger(__name__)
COOKIE = "tl_console_session"
PAGE_SIZE = 50  # trail rows a page shows unless ``limit`` says (at most MAX_PAGE)
MAX_PAGE = 1000
EXPORT_LIMIT = 100_000  # rows of one trail export, at most (the page names a larger total)
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
router = APIRouter(prefix="/console", include_in_schema=False)
Render = Callable[[Principal, str], Awaitable[Response]]


def install(app: FastAPI, config: ConsoleConfig) -> None:
    """Serve the console's pages from ``app`` (the projections' HTTP app)."""
    app.state.console = config
    app.include_router(router)


# ---- sessions ---------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> Response:
    return _html("login.html", _login_context(request, None), None)


def _login_context(request: Request, reason: str | None) -> dict[str, Any]:
    """The login page's: the studies to choose from, where more than one is served."""
    studies = tuple(request.app.state.applications)
    return {"title": "Log in", "reason": reason, "studies": studies if len(studies) > 1 else ()}


def _study_path(study: str, path: str) -> str:
    """Identity's ``path`` for ``study`` (the first study's: unprefixed, as before studies)."""
    return path if study == DEFAULT_STUDY_ID else f"/studies/{quote(study, safe='')}{path}"


@router.post("/login")
async def log_in(request: Request) -> Response:
    if (refused := _foreign_origin(request)) is not None:
        return refused
    form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True, errors="strict"))
    user_id, password = form.get("user_id", ""), form.get("password", "")
    study = form.get("study") or DEFAULT_STUDY_ID
    if study not in request.app.state.applications:
        reason = f"Study {study} is not served here."
        return _html("login.html", _login_context(request, reason), None, status=404)
    try:
        async with httpx.AsyncClient(base_url=_config(request).identity_url, timeout=15) as http:
            answer = await http.post(
                _study_path(study, "/login"), json={"user_id": user_id, "password": password}
            )
    except httpx.HTTPError as error:
        log.warning("console login: identity unreachable error=%s", error)
        reason = "The identity service did not answer; try again."
        return _html("login.html", _login_context(request, reason), None, status=503)
    token, reason = _login_answer(answer)
    if token is None:
        status = answer.status_code if 400 <= answer.status_code < 500 else 503
        return _html("login.html", _login_context(request, reason), None, status=status)
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, secure=_config(request).secure_cookie,
                        samesite="strict", path="/console")  # fmt: skip
    return response


def _login_answer(answer: httpx.Response) -> tuple[str | None, str]:
    """Identity's answer to a login: the access token, or why there is none."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, f"identity answered {answer.status_code} without a readable body"
    token = body.get("access_token") if answer.status_code == 200 else None
    if isinstance(token, str) and token:
        return token, ""
    return None, str(body.get("message") or f"identity answered {answer.status_code}")


@router.post("/logout")
async def log_out(request: Request) -> Response:
    """Ends the identity session (its token is then refused everywhere) and the cookie."""
    if (refused := _foreign_origin(request)) is not None:
        return refused
    token = request.cookies.get(COOKIE)
    if token:
        try:
            async with httpx.AsyncClient(base_url=_config(request).identity_url,
                                         timeout=15) as http:  # fmt: skip
                await http.post(_study_path(_token_study(request, token), "/logout"),
                                headers={"authorization": f"Bearer {token}"})  # fmt: skip
        except httpx.HTTPError as error:  # the cookie goes anyway; the token expires
            log.warning("console logout: identity unreachable error=%s", error)
    response = RedirectResponse("/console/login", status_code=303)
    _forget(response, _config(request))
    return response


def _token_study(request: Request, token: str) -> str:
    """The study ``token`` is for (the first study's, if it is not a token this service
    accepts: identity refuses it anyway)."""
    try:
        principal: Principal = request.app.state.verifier.principal(token)
    except Exception:  # a forged or expired cookie still logs out
        return DEFAULT_STUDY_ID
    return principal.study_id or DEFAULT_STUDY_ID


def _forget(response: Response, config: ConsoleConfig) -> None:
    """Clear the session cookie (with the attributes it was set with, or browsers keep it)."""
    response.delete_cookie(COOKIE, path="/console", secure=config.secure_cookie,
                           httponly=True, samesite="strict")  # fmt: skip


def _foreign_origin(request: Request) -> Response | None:
    """A 403 page unless the POST's ``Origin`` is this service's own (CSRF)."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    if request.headers.get("origin") == own:
        return None
    reason = "This form must be sent from the console's own page (Origin check)."
    return _html("error.html", {"title": "Refused", "status": 403, "code": "cross_origin",
                                "reason": reason}, None, status=403)  # fmt: skip


# ---- pages ------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/console/trial", status_code=303)


@router.get("/trial")
async def trial(request: Request) -> Response:
    async def render(who: Principal, token: str) -> Response:
        ledger = _application(request)
        summary = await ledger.trial(who)
        endpoints = await ledger.endpoints(who)
        figures = {k: (definition_of(k, v), v) for k, v in endpoints.items() if k != "time_courses"}
        kinetics = [s for s, c in endpoints["time_courses"].items() if c["car_t_kinetics"]]
        return _html("trial.html", {"title": "Trial", "trial": summary, "endpoints": figures,
                                    "kinetics": kinetics,
                                    "time_courses": DEFINITIONS["time_courses"]}, who)  # fmt: skip

    return await _page(request, "trial", {}, render)


@router.get("/trial/swimmer.svg")
async def swimmer(request: Request) -> Response:
    async def render(who: Principal, token: str) -> Response:
        svg = await _application(request).plot(who, "swimmer")
        return Response(svg, media_type="image/svg+xml")

    return await _page(request, "swimmer", {}, render)


@router.get("/trial/kinetics/{subject_id}.svg")
async def kinetics(request: Request, subject_id: str) -> Response:
    async def render(who: Principal, token: str) -> Response:
        svg = await _application(request).plot(who, f"kinetics/{subject_id}")
        return Response(svg, media_type="image/svg+xml")

    return await _page(request, "kinetics", {"subject_id": subject_id}, render)


@router.get("/subject")
async def open_subject(request: Request, subject_id: str = "") -> Response:
    """The navigation's form: to the subject's page."""
    subject = quote(subject_id.strip() or "-", safe="")
    return RedirectResponse(f"/console/subjects/{subject}", status_code=303)


@router.get("/subjects/{subject_id}")
async def subject(request: Request, subject_id: str) -> Response:
    query = dict(request.query_params)

    async def render(who: Principal, token: str) -> Response:
        as_of, position = _time(query.get("as_of")), _number(query.get("position"), "position")
        ledger = _application(request)
        state = await ledger.subject(who, subject_id, as_of, position)
        rows = await ledger.trail(who, TrailFilter(subject_id=subject_id, limit=EXPORT_LIMIT))
        context = {"title": f"Subject {subject_id}", "subject_id": subject_id,
                   "state": _flat(state or {}), "events": _events(rows),
                   "positions": sorted({r["position"] for r in rows}),
                   "position": position, "as_of": query.get("as_of") or ""}  # fmt: skip
        return _html("subject.html", context, who)

    return await _page(request, "subject", {"subject_id": subject_id, **query}, render)


@router.get("/trail")
async def trail(request: Request) -> Response:
    query = {k: v for k, v in request.query_params.items() if v}

    async def render(who: Principal, token: str) -> Response:
        size = min(_number(query.get("limit"), "limit") or PAGE_SIZE, MAX_PAGE)
        filters = _trail_filter(query, size + 1)  # one more: is there a next page?
        rows = await _application(request).trail(who, filters)
        shown = [_shown(r) for r in rows[:size]]
        plain = {k: v for k, v in query.items() if k != "offset"}
        exported = urlencode({k: v for k, v in plain.items() if k != "limit"})
        context = {"title": "Audit trail", "query": query, "rows": shown,
                   "offset": filters.offset, "page_size": size,
                   "previous": _link(plain, max(0, filters.offset - size))
                   if filters.offset else None,
                   "next": _link(plain, filters.offset + size) if len(rows) > size else None,
                   "csv": f"/console/trail.csv?{exported}",
                   "json": f"/console/trail.json?{exported}"}  # fmt: skip
        return _html("trail.html", context, who)

    return await _page(request, "trail", query, render)


@router.get("/trail.{kind}")
async def trail_export(request: Request, kind: str) -> Response:
    """Every row the filters select (not one page), as CSV or JSON."""
    query = {k: v for k, v in request.query_params.items() if v and k not in ("offset", "limit")}

    async def render(who: Principal, token: str) -> Response:
        if kind not in ("csv", "json"):
            raise InvalidValue(f"no export {kind!r}: csv or json", kind=kind)
        rows = await _application(request).trail(who, _trail_filter(query, EXPORT_LIMIT))
        name = f'attachment; filename="audit-trail.{kind}"'
        if kind == "json":
            return Response(json.dumps(rows, indent=1), media_type="application/json",
                            headers={"content-disposition": name})  # fmt: skip
        return Response(_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": name})  # fmt: skip

    return await _page(request, f"trail.{kind}", query, render)


@dataclass(frozen=True)
class Review:
    """A review report: a title, what it looks for, and the trail filter that finds it."""

    title: str
    looks_for: str
    query: dict[str, str]


SITE_ZONE = "Asia/Shanghai"  # the trial's site (Zhejiang University): docs/auditing.md
REVIEWS = (
    Review("Entries outside working hours", "rows recorded before 08:00 or from 18:00, or "
           "on a weekend, in the site's time", {"outside_hours": "8-18", "zone": SITE_ZONE}),
    Review("Corrections and their reasons", "every value corrected, with the reason given",
           {"event_type": ValueCorrectedV1.event_type}),
    Review("Denied access", "every command or read refused for the caller's roles or account",
           {"event_type": f"{AccessDeniedV1.event_type},{AccessDeniedV2.event_type}"}),
    Review("Failed logins, failed signings and lockouts", "wrong passwords at login and at "
           "signing, and the accounts locked by them",
           {"event_type": ",".join(e.event_type for e in (LoginFailedV1, SigningFailedV1,
                                                      AccountLockedV1))}),
    Review("Records signed long after entry", "signed 24 hours or more after the record was "
           "entered", {"signed_late_hours": "24"}),
    Review("Late data entry", "recorded 72 hours or more after the clinical time it states",
           {"entered_late_hours": "72"}),
)  # fmt: skip


@router.get("/reviews")
async def reviews(request: Request) -> Response:
    async def render(who: Principal, token: str) -> Response:
        links = [(r, f"/console/trail?{urlencode(r.query)}") for r in REVIEWS]
        return _html("reviews.html", {"title": "Review reports", "reviews": links}, who)

    return await _page(request, "reviews", {}, render)


@router.get("/integrity")
async def integrity(request: Request) -> Response:
    query = {k: v for k, v in request.query_params.items() if v}

    async def render(who: Principal, token: str) -> Response:
        ledger = _application(request)
        latest = await ledger.latest_checkpoint()
        context = {"title": "Integrity", "query": query, "checkpoint": latest,
                   **await _proofs(ledger, who, query)}  # fmt: skip
        if query.get("verify"):
            context["verify"] = (await ledger.verify(who, token=token)).to_json()
        if query.get("reconcile"):
            context["reconcile"] = await ledger.reconcile(who, token)
        return _html("integrity.html", context, who)

    return await _page(request, "integrity", query, render)


async def _proofs(
    ledger: ProjectionsApplication, who: Principal, query: dict[str, str]
) -> dict[str, Any]:
    """The proofs the query asks for, each checked here (``merkle``) before it is shown."""
    proofs: dict[str, Any] = {}
    if "position" in query:
        position = _number(query["position"], "position") or 0
        proofs["inclusion"] = _checked_inclusion(await ledger.inclusion_proof(who, position))
    if "old_size" in query:
        old = _number(query["old_size"], "old_size") or 0
        new = _number(query.get("new_size"), "new_size")
        proofs["consistency"] = _checked_consistency(await ledger.consistency_proof(who, old, new))
    return proofs


# ---- plumbing ---------------------------------------------------------------------------


async def _page(
    request: Request, page: str, parameters: dict[str, Any], render: Render
) -> Response:
    """Admit the cookie's token, record the view (auditors only), then ``render``; every
    refusal becomes a page with its status and reason, never a 500."""
    token = request.cookies.get(COOKIE)
    if not token:
        return RedirectResponse("/console/login", status_code=303)
    try:
        who = await holder(request, token)
        request.state.console_study = who.study_id or DEFAULT_STUDY_ID
        await _application(request).authorise(who, "console", {"page": page, **parameters})
        return await render(who, token)
    except Exception as error:  # each becomes a page; unknown ones are logged too
        return _refusal(error, _config(request))


def _refusal(error: Exception, config: ConsoleConfig) -> Response:
    status = status_of(type(error))
    if status is None:
        log.exception("console page failed", exc_info=error)
        status, code, reason = 500, "internal_error", "The page failed; it is logged."
    else:
        code = getattr(error, "code", "refused")
        reason = getattr(error, "message", None) or str(error)
    context = {"title": "Refused" if status < 500 else "Unavailable", "status": status,
               "code": code, "reason": reason}  # fmt: skip
    response = _html("error.html", context, None, status=status)
    if isinstance(error, Unauthenticated):  # expired, forged or withdrawn: log in again
        _forget(response, config)
    if status == 503:
        response.headers["retry-after"] = "5"
    return response


def _html(template: str, context: dict[str, Any], who: Principal | None,
          status: int = 200) -> HTMLResponse:  # fmt: skip
    # the session's study, named in the header when it is not the first study
    study = None if who is None or who.study_id in (None, DEFAULT_STUDY_ID) else who.study_id
    body = TEMPLATES.get_template(template).render(**context, who=who, study=study)
    headers = {"cache-control": "no-store", "x-frame-options": "DENY",
               "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self'; form-action 'self'; frame-ancestors 'none'"}  # fmt: skip
    return HTMLResponse(body, status_code=status, headers=headers)


def _application(request: Request) -> ProjectionsApplication:
    """The application over the ledger of the session's study (its token's): a session
    never reads another study's ledger."""
    return study_application(request, request.state.console_study)


def _config(request: Request) -> ConsoleConfig:
    config: ConsoleConfig = request.app.state.console
    return config


def _number(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit() or not 1 <= int(text) < 2**63:
        raise InvalidValue(f"{name} must be a whole number from 1, got {text!r}", **{name: text})
    return int(text)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"as_of must be an ISO 8601 time, got {text!r}", as_of=text) from None
    if moment.tzinfo is None:
        raise InvalidValue(f"as_of needs its UTC offset (Z or +hh:mm), got {text!r}", as_of=text)
    return moment


def _trail_filter(query: dict[str, str], limit: int) -> TrailFilter:
    return TrailFilter(
        subject_id=query.get("subject_id"), user_id=query.get("user_id"),
        event_type=query.get("event_type"), since=_time(query.get("since")),
        until=_time(query.get("until")), limit=limit, role=query.get("role"),
        reason=query.get("reason"), offset=_offset(query.get("offset")),
        entered_late_hours=_hours(query.get("entered_late_hours"), "entered_late_hours"),
        signed_late_hours=_hours(query.get("signed_late_hours"), "signed_late_hours"),
        outside=_working_hours(query.get("outside_hours"), query.get("zone") or "UTC"),
    )  # fmt: skip


def _hours(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 1_000_000:
        raise InvalidValue(f"{name} must be a number of hours from 0, got {text!r}", **{name: text})
    return hours


def _working_hours(text: str | None, zone: str) -> WorkingHours | None:
    """``8-18`` in an IANA time zone: 08:00 to 18:00 local time, Monday to Friday."""
    if not text:
        return None
    start, _, end = text.partition("-")
    if not (start.isdigit() and end.isdigit() and 0 <= int(start) < int(end) <= 24):
        raise InvalidValue(f"outside_hours must be like 8-18 (start-end, 0 to 24), got {text!r}",
                           outside_hours=text)  # fmt: skip
    try:
        ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise InvalidValue(f"zone must be an IANA time zone, got {zone!r}", zone=zone) from None
    return WorkingHours(int(start), int(end), zone)


def _offset(text: str | None) -> int:
    if text is None or text == "0":
        return 0
    return _number(text, "offset") or 0


def _link(query: dict[str, str], offset: int) -> str:
    return f"/console/trail?{urlencode({**query, 'offset': offset})}"


def _value(value: Any) -> str:
    """A trail value (JSON text, or absent) as an auditor reads it."""
    return "(absent)" if value is None else str(value)


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "old": _value(row.get("old_value")), "new": _value(row.get("new_value"))}


@dataclass
class Event:
    """One event of a subject, with the rows (fields) it set or changed."""

    position: int
    row: dict[str, Any]
    changes: list[dict[str, Any]]


def _events(rows: list[dict[str, Any]]) -> list[Event]:
    events: dict[int, Event] = {}
    for row in rows:
        event = events.setdefault(row["position"], Event(row["position"], row, []))
        event.changes.append(_shown(row))
    return list(events.values())


def _flat(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(key, value if isinstance(value, str) else json.dumps(value, default=str))
            for key, value in state.items()]  # fmt: skip


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _checked_inclusion(proof: dict[str, Any]) -> dict[str, Any]:
    """The inclusion proof, checked here against its checkpoint's root."""
    ok = merkle.verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]), proof["position"] - 1, proof["tree_size"],
        [bytes.fromhex(p) for p in proof["proof"]], bytes.fromhex(proof["checkpoint"]["root"]),
    )  # fmt: skip
    return {**proof, "verified": ok}


def _checked_consistency(proof: dict[str, Any]) -> dict[str, Any]:
    """The consistency proof, checked here between its two roots; and the new root against
    the signed checkpoint's, when the proof ends at that checkpoint's size."""
    ok = merkle.verify_consistency(
        proof["old_size"], proof["new_size"], bytes.fromhex(proof["old_root"]),
        bytes.fromhex(proof["new_root"]), [bytes.fromhex(p) for p in proof["proof"]],
    )  # fmt: skip
    signed = proof["checkpoint"]
    return {**proof, "verified": ok and (signed["size"] != proof["new_size"]
                                         or signed["root"] == proof["new_root"])}  # fmt: skip
