"""The site team and the auditor, created by the administrator the operator names.

The demo gets no account of its own: it logs in as an administrator made with
``make admin`` (the operator gives the id and password), and that administrator creates
the five users through the identity API, each with a random password that lives in this
process only (never printed, never stored). The accounts stay, inert, in the user list.
The demo refuses to run where its users already exist: a trial has one 3+3 history,
so the story runs once per system.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from tools.demo.client import Api, Credentials, DemoError, Session
from tools.demo.story import SITE

# (user id, printed name, role)
MEMBERS = (
    ("lin.wei", "Dr Lin Wei", "investigator"),
    ("chen.hao", "Dr Chen Hao", "sub_investigator"),
    ("wang.fang", "Wang Fang", "study_coordinator"),
    ("zhao.min", "Zhao Min", "cell_therapy_pharmacist"),
    ("kim.auditor", "Kim Seo-yeon", "auditor"),
)
PRINTED_NAMES = {role: name for _, name, role in MEMBERS}


@dataclass(frozen=True)
class Team:
    """Who does what: each command is sent by a user whose role may send it."""

    investigator: Session  # eligibility, infusion, DLTs, safety reviews, remission
    sub_investigator: Session  # consent, enrollment, lymphodepletion, grading, visits
    coordinator: Session  # registration, screening, corrections, leukapheresis, reports
    pharmacist: Session  # product release
    auditor: Session  # the ledger: trial, endpoints, verify, export

    @property
    def everyone(self) -> tuple[Session, ...]:
        return (self.investigator, self.sub_investigator, self.coordinator,
                self.pharmacist, self.auditor)  # fmt: skip


async def assemble(api: Api, administrator: Credentials) -> Team:
    """Create the team's accounts as the administrator, then log each member in."""
    admin = Session(api, administrator)
    await admin.log_in()
    for user_id, _, _ in MEMBERS:
        await _refuse_if_exists(admin, user_id)
    sessions = []
    for user_id, printed_name, role in MEMBERS:
        credentials = Credentials(user_id, secrets.token_urlsafe(18))
        await admin.post("identity", "/users", {
            "user_id": user_id, "printed_name": printed_name, "site": SITE, "roles": [role],
            "password": credentials.password,
        }, expect=(201,))  # fmt: skip
        sessions.append(Session(api, credentials))
    await admin.log_out()
    for session in sessions:
        await session.log_in()
    return Team(*sessions)


async def _refuse_if_exists(admin: Session, user_id: str) -> None:
    answer = await admin.send("GET", "identity", f"/users/{user_id}", expect=(200, 404))
    if answer and answer.get("user_id") == user_id:
        raise DemoError(
            f"user {user_id} exists already: the demo has run against this system before. "
            "It needs a fresh trial (empty databases and topics); see docs/operations.md"
        )
