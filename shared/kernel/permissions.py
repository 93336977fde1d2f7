"""The one role x command table: for every service, every command and read it checks a
token for, the roles that may run it; the routes that need no token; and which of a
user's roles acts (and is recorded) when they hold several.

Every service takes its rows from here (``table(service)``): the command services through
``shared.web.http.Authorisation``, the projections in their reader check. The table in
docs/security.md is generated from it (``python -m shared.kernel.permissions --write``;
``--markdown`` prints it) and ``tests/shared/test_permissions.py`` fails when the two
differ, or when a route of a service's app has no row here, or a row no route.

Adding a role: add it to ``shared.kernel.provenance.Role``, to each service's ``precedence``
below (where it stands decides when it is the role recorded), and to the rows it may run;
then regenerate docs/security.md.

Pure: no I/O but in ``main`` (the command line), importable by domain-free code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from shared.kernel.provenance import Role

INVESTIGATOR = Role.INVESTIGATOR
SUB_INVESTIGATOR = Role.SUB_INVESTIGATOR
STUDY_COORDINATOR = Role.STUDY_COORDINATOR
PHARMACIST = Role.CELL_THERAPY_PHARMACIST
MONITOR = Role.MONITOR
AUDITOR = Role.AUDITOR
ADMINISTRATOR = Role.ADMINISTRATOR

# Who acts when a user holds several roles the command permits: the first of these. The
# recorded role says in which capacity the user did it, so the clinical roles come first,
# the most accountable first (the investigator answers for the trial's conduct, the
# sub-investigator acts by delegation, then the coordinator and the pharmacist), then
# the oversight roles, then account management. This is the order the command services
# have recorded since they were written (it used to be the ``Role`` enum's order,
# ``shared.web.http.ROLE_ORDER``); written out here so that reordering the enum changes nothing.
CLINICAL_FIRST: tuple[Role, ...] = (
    INVESTIGATOR,
    SUB_INVESTIGATOR,
    STUDY_COORDINATOR,
    PHARMACIST,
    MONITOR,
    AUDITOR,
    ADMINISTRATOR,
)
# The ledger's reads have always recorded an auditor-and-monitor as the auditor (the
# projections' own check, before this table): kept, so that no recorded role changes.
# One order for every service would be simpler; choosing it is a change of behaviour.
AUDITOR_FIRST: tuple[Role, ...] = (AUDITOR, MONITOR, *CLINICAL_FIRST[:4], ADMINISTRATOR)

STORE_COMMAND = "store.read"
# Answer without a token on every service (shared.web.http.command_app, shared.web.observability).
OPERATIONS: tuple[str, ...] = ("GET /health", "GET /ready", "GET /metrics")


@dataclass(frozen=True)
class Rule:
    """One row: a command (or read) of a service, as its routes name it, and the roles
    that may run it."""

    command: str
    roles: frozenset[Role]
    says: str  # what it is, in the words of docs/security.md


@dataclass(frozen=True)
class ServiceTable:
    """One service's rows, its routes that need no token, and its order of roles."""

    service: str
    rules: tuple[Rule, ...]
    public: tuple[str, ...]  # "METHOD /path" of its own app, besides OPERATIONS
    precedence: tuple[Role, ...]  # who acts of several permitted roles: the first held

    @property
    def permissions(self) -> dict[str, frozenset[Role]]:
        """Command -> the roles that may run it."""
        return {rule.command: rule.roles for rule in self.rules}

    def roles(self, command: str) -> frozenset[Role]:
        """The roles that may run ``command``; KeyError names a command with no row."""
        for rule in self.rules:
            if rule.command == command:
                return rule.roles
        raise KeyError(f"{self.service} has no row for {command!r} in shared.kernel.permissions")

    def acting_role(self, command: str, held: Collection[Role]) -> Role | None:
        """The role a user holding ``held`` acts in for ``command``: the first of the
        service's ``precedence`` they hold and the command permits; None: refused."""
        permitted = self.roles(command)
        return next((r for r in self.precedence if r in held and r in permitted), None)


def _rules(service: str, *rows: tuple[str, Collection[Role], str]) -> tuple[Rule, ...]:
    return tuple(Rule(f"{service}.{name}", frozenset(roles), says) for name, roles, says in rows)


STAFF = (INVESTIGATOR, SUB_INVESTIGATOR)
SITE_TEAM = (*STAFF, STUDY_COORDINATOR)
READERS = (MONITOR, AUDITOR)  # oversight: read everything, write nothing
_STORE = Rule(
    STORE_COMMAND,
    frozenset(READERS),
    "read its store (`GET /store/head`, `/store/events`), for completeness checks",
)


def _command_service(
    service: str, *rows: tuple[str, Collection[Role], str], public: tuple[str, ...] = ()
) -> ServiceTable:
    """A command service's table: its ``rows``, then reading its store; clinicians first."""
    return ServiceTable(service, (*_rules(service, *rows), _STORE), public, CLINICAL_FIRST)


TABLES: Mapping[str, ServiceTable] = {
    rows.service: rows
    for rows in (
        _command_service(
            "identity",
            ("create_user", [ADMINISTRATOR], "create a user"),
            ("grant_role", [ADMINISTRATOR], "grant a role"),
            ("revoke_role", [ADMINISTRATOR], "revoke a role"),
            ("deactivate_user", [ADMINISTRATOR], "deactivate a user"),
            ("unlock_user", [ADMINISTRATOR], "unlock a user"),
            ("read_users", [ADMINISTRATOR, *READERS], "read a user"),
            ("sign", list(Role), "sign: re-authenticate"),
            ("log_out", list(Role), "log out"),
            public=("POST /login", "POST /password", "GET /separation-of-duties"),
        ),
        _command_service(
            "enrollment",
            ("register_subject", SITE_TEAM, "register a subject"),
            ("sign_consent", STAFF, "record consent, signed"),
            ("record_screening", SITE_TEAM, "record screening"),
            ("decide_eligibility", [INVESTIGATOR], "decide eligibility, signed"),
            ("enrol", STAFF, "enrol at a dose level"),
            ("withdraw", STAFF, "withdraw"),
            ("record_death", STAFF, "record a death"),
            ("correct_value", SITE_TEAM, "correct a value"),
            ("read_subject", [*SITE_TEAM, PHARMACIST, *READERS], "read a subject"),
            public=("GET /eligibility-criteria",),
        ),
        _command_service(
            "infusion",
            ("record_leukapheresis", SITE_TEAM, "record leukapheresis"),
            ("release_product", [PHARMACIST], "release a product lot"),
            ("record_lymphodepletion", STAFF, "record lymphodepletion"),
            ("infuse", STAFF, "infuse, signed"),
            ("decline_infusion", STAFF, "record an infusion not given"),
            ("interrupt_infusion", STAFF, "record an interrupted infusion"),
            ("read_treatment", [*SITE_TEAM, PHARMACIST, *READERS], "read a treatment"),
        ),
        _command_service(
            "adverse_events",
            ("report", SITE_TEAM, "report an adverse event"),
            ("grade", STAFF, "grade or regrade, signed"),
            ("assess_seriousness", STAFF, "assess seriousness"),
            ("assess_causality", STAFF, "assess causality, signed"),
            ("adjudicate_dlt", [INVESTIGATOR], "adjudicate a DLT, signed"),
            ("approve_safety_review", [INVESTIGATOR], "approve a safety review, signed"),
            ("resolve", SITE_TEAM, "resolve"),
            ("read", [*SITE_TEAM, PHARMACIST, *READERS], "read an event, the cohort"),
        ),
        _command_service(
            "assessments",
            ("assess_activity", STAFF, "record a disease-activity visit"),
            ("record_measurement", SITE_TEAM, "record autoantibodies, CAR-T kinetics"),
            ("assess_remission", [INVESTIGATOR], "assess remission, signed"),
            ("report_progression", STAFF, "report progression or a flare"),
            ("read", [*SITE_TEAM, *READERS], "read a subject's assessments"),
        ),
        ServiceTable(
            # the ledger's reads, by the action the projections record in auditor_activity
            "projections",
            _rules(
                "projections",
                ("trail", READERS, "the audit trail"),
                ("subject", READERS, "a subject as of a time or position"),
                ("trial", READERS, "the trial's safety summary"),
                ("endpoints", READERS, "the endpoints"),
                ("plot", READERS, "the plots"),
                ("verify", READERS, "verify"),
                ("proof", READERS, "inclusion and consistency proofs"),
                ("export", READERS, "export"),
                ("reconcile", READERS, "reconcile"),
                ("rebuild", READERS, "rebuild the views (command line)"),
                ("console", [AUDITOR], "the auditor's console, each page (`/console/`)"),
            ),
            ("GET /checkpoint", "GET /checkpoints"),
            AUDITOR_FIRST,
        ),
    )
}


# The roles that record or change clinical data: those some command of a clinical service
# that is not a read permits (tests/shared/test_permissions.py fails when a role that may
# write clinical data is missing here, so a new clinical role cannot slip past the rule below).
CLINICAL: frozenset[Role] = frozenset(
    {INVESTIGATOR, SUB_INVESTIGATOR, STUDY_COORDINATOR, PHARMACIST}
)
# Names a combination setting may use for a group of roles besides the roles themselves.
ROLE_GROUPS: Mapping[str, frozenset[Role]] = {"clinical": CLINICAL}


@dataclass(frozen=True)
class SeparationOfDuties:
    """Role pairs no one may hold together (docs/security.md, "Separation of duties").

    Written as ``TL_INCOMPATIBLE_ROLES`` says it: comma-separated ``a+b`` items, each side a
    role or a group (``clinical``); ``none`` forbids nothing. The default,
    ``administrator+clinical``, keeps account management apart from clinical data.
    """

    forbidden: frozenset[frozenset[Role]]

    DEFAULT: ClassVar[str] = "administrator+clinical"

    @classmethod
    def parse(cls, text: str) -> SeparationOfDuties:
        """The pairs ``text`` names; ValueError names an item that is not ``a+b`` of
        roles or groups, or that pairs a role with itself."""
        if text.strip().lower() == "none":
            return cls(frozenset())
        pairs: set[frozenset[Role]] = set()
        for item in filter(None, (part.strip() for part in text.split(","))):
            sides = [side.strip() for side in item.split("+")]
            if len(sides) != 2:
                raise ValueError(f"{item!r} is not a pair written a+b")
            left, right = (_roles_named(side) for side in sides)
            for a in left:
                for b in right:
                    if a == b:
                        raise ValueError(f"{item!r} pairs {a} with itself")
                    pairs.add(frozenset({a, b}))
        return cls(frozenset(pairs))

    @classmethod
    def default(cls) -> SeparationOfDuties:
        return cls.parse(cls.DEFAULT)

    def pairs(self) -> list[list[str]]:
        """Every forbidden pair, each as ``conflicts`` names it, sorted: the form two services
        compare (identity publishes it at ``GET /separation-of-duties``)."""
        return sorted([a.value, b.value] for a, b in map(_sorted_pair, self.forbidden))

    def conflicts(
        self, roles: Collection[Role], adding: Collection[Role] | None = None
    ) -> list[tuple[Role, Role]]:
        """The forbidden pairs ``roles`` hold, sorted; with ``adding``, only those that
        hold one of ``adding`` (what a grant would bring, not what was there before)."""
        held = set(roles)
        found = [
            pair
            for pair in self.forbidden
            if pair <= held and (adding is None or pair & set(adding))
        ]
        return sorted(_sorted_pair(pair) for pair in found)


def _sorted_pair(pair: frozenset[Role]) -> tuple[Role, Role]:
    a, b = sorted(pair, key=CLINICAL_FIRST.index)
    return a, b


def _roles_named(name: str) -> frozenset[Role]:
    if name in ROLE_GROUPS:
        return ROLE_GROUPS[name]
    try:
        return frozenset({Role(name)})
    except ValueError:
        known = ", ".join([*ROLE_GROUPS, *Role])
        raise ValueError(f"{name!r} is neither a role nor a group ({known})") from None


def table(service: str) -> ServiceTable:
    """The rows of ``service``; KeyError names a service with no table."""
    try:
        return TABLES[service]
    except KeyError:
        raise KeyError(f"no permission table for service {service!r}") from None


def check_tables(tables: Mapping[str, ServiceTable]) -> None:
    """Fail at import on a table that cannot be right: a role missing from a precedence
    (it could never act, or be recorded by accident of order), or a command twice."""
    for t in tables.values():
        if sorted(t.precedence) != sorted(Role):
            raise ValueError(f"{t.service}: precedence must name every role once")
        commands = [rule.command for rule in t.rules]
        if len(set(commands)) != len(commands):
            raise ValueError(f"{t.service}: a command has two rows")


check_tables(TABLES)

BEGIN = (
    "<!-- role table: generated by `python -m shared.kernel.permissions --write`; do not edit -->"
)
END = "<!-- end of the generated role table -->"
GUIDE = Path("docs/security.md")


def markdown() -> str:
    """The role table of docs/security.md, between its markers."""
    header = " | ".join(f"`{role}`" for role in CLINICAL_FIRST)
    lines = [
        BEGIN,
        "",
        f"| service | command | {header} |",
        "|---|---|" + "---|" * len(CLINICAL_FIRST),
    ]
    for t in TABLES.values():
        for rule in t.rules:
            cells = [t.service, f"{rule.says} (`{rule.command}`)"]
            cells += ["x" if role in rule.roles else "" for role in CLINICAL_FIRST]
            lines.append("|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|")
    lines += ["", "Without a token: " + ", ".join(f"`{p}`" for p in OPERATIONS) + " everywhere;"]
    for t in TABLES.values():
        if t.public:
            lines.append(f"{t.service}: " + ", ".join(f"`{p}`" for p in t.public) + ";")
    lines[-1] = lines[-1].removesuffix(";") + "."
    lines += [
        "",
        "A user who holds several of the roles a command permits acts, and is recorded, in",
    ]
    orders: dict[tuple[Role, ...], list[str]] = {}
    for t in TABLES.values():
        orders.setdefault(t.precedence, []).append(t.service)
    said = [
        f"{', '.join(services)}: the first of {', '.join(f'`{r}`' for r in order)}"
        for order, services in orders.items()
    ]
    lines += ["; ".join(said) + ".", "", END]
    return "\n".join(lines) + "\n"


def rewritten(guide: str) -> str:
    """``guide`` with the text between the markers replaced by ``markdown()``."""
    start, end = guide.index(BEGIN), guide.index(END) + len(END) + 1
    return guide[:start] + markdown() + guide[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.kernel.permissions", description=__doc__
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="print the role table")
    what.add_argument("--write", action="store_true", help=f"rewrite it in {GUIDE}")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository")
    arguments = parser.parse_args(argv)
    if arguments.markdown:
        sys.stdout.write(markdown())
        return 0
    path: Path = arguments.root / GUIDE
    path.write_text(rewritten(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the role table into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
