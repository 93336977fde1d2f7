"""The Part 11 matrix (issue #20): each requirement, the control that meets it, and the
tests that prove it, written to docs/part11.md from the tests' own markers.

A test proves a clause by naming it: ``@pytest.mark.part11("11.10(e)")`` on the test (or
its class), or ``pytestmark = [..., pytest.mark.part11("11.10(a)")]`` for a whole file.
The matrix is read from the test files' source, not from a run, so it does not depend on
which tests a run selected::

    python -m tests.part11           # rewrite docs/part11.md
    python -m tests.part11 --check   # exit 1 when docs/part11.md is not what the markers say

``tests/docs/test_part11.py`` fails when the page differs from the markers (a marked test
disappeared or was added), when a row met by software has lost its last test, or when a
marker names a clause this table does not have (the collection refuses it too).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "part11.md"

SOFTWARE = "software"
PROCEDURE = "procedure"  # met by the sponsor's and the site's written procedures
NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class Clause:
    """One row: a requirement (in our words, not the regulation's), how it is met."""

    id: str  # what a marker names
    requirement: str
    control: str  # the modules and settings that meet it, or who does
    met_by: str = SOFTWARE


CLAUSES: tuple[Clause, ...] = (
    Clause(
        "11.10(a)",
        "Validated system; invalid or altered records can be discerned.",
        "Every event is a leaf of an RFC 6962 Merkle tree with signed C2SP checkpoints "
        "(`services/projections/ledger.py`, `merkle.py`, `notes.py`); `verify` recomputes "
        "every leaf and root and names the first bad position and its kind "
        "(`services/projections/domain.py`, `LedgerVerification`); reconciliation against "
        "each service's event store (`reconcile.py`); a witness cosigns checkpoints "
        "(`witness.py`); exports verify offline in Python and Go (`tools/verify`). "
        "Validation of the software itself: this suite, run by CI on every change.",
    ),
    Clause(
        "11.10(b)",
        "Accurate and complete copies, human-readable and electronic, for inspection.",
        "Auditor exports of the whole ledger or one subject, with proofs, checkpoints and "
        "signatures, verifiable offline (`services/projections/offline.py`; `GET /export`, "
        "CLI `export`, as JSON or a CSV table); the audit trail and each subject's state as "
        "JSON (`GET /trail`, `GET /subjects/<id>`; docs/auditing.md).",
    ),
    Clause(
        "11.10(c)",
        "Records protected for accurate and ready retrieval throughout retention.",
        "The ledger writer's role may only INSERT into the ledger (no UPDATE, DELETE, "
        "TRUNCATE; `services/projections/ledger.py`); topics keep records forever "
        "(`shared/adapters/topics.py`, `retention.ms=-1`); backups of PostgreSQL and of "
        "Kafka's volume restore (docs/operations.md).",
    ),
    Clause(
        "11.10(d)",
        "System access limited to authorised individuals.",
        "Every command and every ledger read needs an EdDSA access token from identity "
        "(`shared/web/auth.py`, `TL_TOKEN_TTL_SECONDS`); a token of another key, expired or "
        "malformed is 401. Access ends when it is withdrawn: every service follows "
        "identity's lockouts, deactivations, role revocations and logouts and refuses the "
        "tokens they withdraw within seconds (401 `token_revoked`), and fails closed (503) "
        "when it cannot confirm it has read them within `TL_REVOCATION_MAX_LAG_SECONDS` "
        '(`shared/adapters/revocations.py`; docs/security.md, "Withdrawing access").',
    ),
    Clause(
        "11.10(e)",
        "Secure, computer-generated, time-stamped audit trail of entries and actions that "
        "create or change records; changes do not obscure what was recorded before; kept "
        "as long as the records.",
        "Events are immutable; a correction is a new event with the old value, the new value "
        "and a reason (`services/*/domain.py`); the ledger's audit trail has who, what, "
        "when (server UTC) and why per field (`services/projections/views.py`); every "
        "published event type reaches the trail.",
    ),
    Clause(
        "11.10(f)",
        "Operational checks enforce the permitted sequencing of steps and events.",
        "Domain rules refuse out-of-order steps: consent before screening, eligibility "
        "before enrollment, product release before lymphodepletion before infusion, a cohort "
        "opened by its safety review, nothing after withdrawal or death "
        "(`services/*/domain.py`); refusals are answered with a code (409/422).",
    ),
    Clause(
        "11.10(g)",
        "Authority checks: only authorised individuals sign, alter records or run the "
        "operation at hand.",
        "One role table for every command and ledger read (`shared/kernel/permissions.py`, "
        "printed in docs/security.md); a refused command is answered 403 and recorded as an "
        "`AccessDenied` event (`shared/kernel/principals.py`, `Denial`); a signature must be "
        "the caller's own, for the record, version and meaning at hand. Separation of "
        "duties: no one changes their own roles or status, and roles "
        "`TL_INCOMPATIBLE_ROLES` pairs (by default an administrator and any clinical role) "
        "are never held together (`shared/kernel/permissions.py`, `SeparationOfDuties`).",
    ),
    Clause(
        "11.10(h)",
        "Device checks: the validity of the source of data input or instructions.",
        "Each input is checked at the edge (`shared/web/inputs.py`: encoding, types, ranges, "
        "sizes; 4xx with a code); every event names its service and the client id the "
        "request gave (`shared/kernel/provenance.py`); the ledger takes records only from "
        "the services' topics and contracts, and keeps any other as a dead letter "
        "(`services/projections/ingest.py`).",
    ),
    Clause(
        "11.10(i)",
        "People who build, maintain or use the system have the education, training and "
        "experience for their tasks.",
        "The sponsor's and the site's training records; not a property of the software.",
        PROCEDURE,
    ),
    Clause(
        "11.10(j)",
        "Written policies hold individuals accountable for actions under their electronic "
        "signatures.",
        "The site's written signature policy, acknowledged by each user before their "
        "account is made; not a property of the software.",
        PROCEDURE,
    ),
    Clause(
        "11.10(k)",
        "Controls over systems documentation: distribution, access, revision and change control.",
        "The guides live with the code in version control; the published contracts, the "
        "role table and this page are generated from the code and a test fails when they "
        "drift (`shared/contract_docs`, `tests/part11.py`). Distribution and approval of "
        "documents are the sponsor's procedure.",
    ),
    Clause(
        "11.30",
        "Open systems: controls such as encryption to ensure authenticity, integrity and "
        "confidentiality.",
        "Deployed as a closed system: the site's administrator makes the accounts of site "
        "staff, and the services publish their ports on 127.0.0.1 unless the operator "
        "widens `TL_BIND_ADDRESS` (docs/operations.md). An operator who opens the APIs "
        "beyond the site must put TLS in front of them.",
        NOT_APPLICABLE,
    ),
    Clause(
        "11.50",
        "Signed records show the signer's printed name, the date and time and the meaning "
        "of the signature, in every human-readable form of the record.",
        "A signature is a `RecordSigned` event with printed name, `signed_at` (UTC) and "
        "meaning (`shared/kernel/signatures.py`); the audit trail, the subject views and "
        "the exports show them with the record (`services/projections/views.py`, "
        "`offline.py`).",
    ),
    Clause(
        "11.70",
        "Signatures are linked to their records so that they cannot be excised, copied or "
        "transferred to falsify a record.",
        "Each signature is an Ed25519 signature over the RFC 8785 canonical bytes of the "
        "signed event as published, with its record id and version "
        "(`shared/kernel/signatures.py`, test vectors in docs); a signature for a version "
        "that has since changed is refused (409 `record_changed`).",
    ),
    Clause(
        "11.100(a)",
        "Each electronic signature is unique to one individual and never reused or reassigned.",
        "User ids are never reused, deactivated ones included (`services/identity/domain.py`); "
        "a signature carries its signer's id.",
    ),
    Clause(
        "11.100(b)",
        "The individual's identity is verified before a signature is established.",
        "The site checks a person's identity before its administrator makes their "
        "account; a procedure, not software.",
        PROCEDURE,
    ),
    Clause(
        "11.100(c)",
        "The organisation certifies to the agency that electronic signatures are the legal "
        "equivalent of handwritten ones.",
        "The sponsor's letter to the FDA; not a property of the software.",
        PROCEDURE,
    ),
    Clause(
        "11.200(a)",
        "Signatures not based on biometrics use two components (id and password); in one "
        "continuous session the first signing uses both and later ones at least one; "
        "otherwise both each time.",
        "Signing re-authentication in identity (`services/identity/domain.py`): the first "
        "signing of a session needs id and password, later ones the password, both again "
        "after `TL_SIGNING_IDLE_SECONDS` idle or a logout; each assertion is single-use "
        "and bound to one record, version and meaning.",
    ),
    Clause(
        "11.200(b)",
        "Biometric signatures are used only by their genuine owners.",
        "No biometric signatures are used.",
        NOT_APPLICABLE,
    ),
    Clause(
        "11.300(a)",
        "No two individuals have the same combination of identification code and password.",
        "User ids are unique and never reused (`services/identity/domain.py`).",
    ),
    Clause(
        "11.300(b)",
        "Identification codes and passwords are checked, recalled or revised periodically.",
        "Passwords age out (`TL_PASSWORD_MAX_AGE_DAYS`) and must be changed before the "
        "next login; weak passwords are refused; argon2id hashes "
        "(`services/identity/passwords.py`).",
    ),
    Clause(
        "11.300(c)",
        "Loss management: lost, stolen or compromised credentials are deauthorised.",
        "An administrator deactivates an account or revokes a role, or the user changes a "
        "compromised password; the change is an event on identity's topic, and every "
        "service refuses the tokens it withdraws (for a password change, every token of "
        "the account issued before it) within seconds (`services/identity/domain.py`, "
        "`shared/adapters/revocations.py`).",
    ),
    Clause(
        "11.300(d)",
        "Safeguards against unauthorised use; attempts are detected and reported at once.",
        "Lockout after `TL_MAX_FAILED_ATTEMPTS` failures, until an administrator unlocks; "
        "per-account and per-address attempt budgets (`shared/web/throttle.py`); every "
        "failed login, failed signing, lockout and denial is an event on identity's topic "
        "and in the ledger; a refused login or signing gives one answer whether the "
        "account exists, is deactivated or locked (docs/security.md).",
    ),
    Clause(
        "11.300(e)",
        "Devices that bear or generate identification codes are tested initially and periodically.",
        "No tokens or cards bear identification codes: users sign with id and password.",
        NOT_APPLICABLE,
    ),
    Clause(
        "UTC",
        "ICH E6(R3) and the EMA guideline on computerised systems (2023): audit trail "
        "times are unambiguous and come from the system, not the user.",
        "`recorded_at` is the server's clock in UTC, never taken from a request "
        "(`shared/kernel/provenance.py`); published times are RFC 3339 UTC with "
        "microseconds and `Z`; a clinical time is data, read with its offset and kept in UTC "
        "(`shared/web/inputs.py`).",
    ),
    Clause(
        "accounts",
        "EMA guideline on computerised systems (2023): user accounts and their access "
        "rights are kept as a history: who granted or withdrew what, when and why.",
        "Account creation, role grants and revocations, deactivation, lockout and unlock "
        "are identity events with actor, time and reason, published and kept in the "
        "ledger's audit trail (`services/identity/domain.py`, `publication.py`); the "
        "account review lists them per account, with refused account changes and anyone "
        "holding a forbidden pair of roles (`GET /account-review`, CLI `accounts`; "
        "`services/projections/accounts.py`).",
    ),
    Clause(
        "review",
        "ICH E6(R3) and the EMA guideline (2023): audit trails are reviewed; the reviewers' "
        "own access is traceable.",
        "The auditor's API and CLI query the trail by subject, user, record, event type "
        "and time, and export it; every auditor query is recorded in the activity log, and "
        "a refused one too (`services/projections/api.py`, docs/auditing.md). Routine "
        "review is the sponsor's procedure.",
    ),
)
BY_ID: Mapping[str, Clause] = {clause.id: clause for clause in CLAUSES}
MARKER = "part11"


def marked_tests(root: Path = ROOT) -> dict[str, list[str]]:
    """Clause id -> the tests that name it (``path::test`` or ``path::Class::test``),
    read from the source of every ``tests/**/test_*.py``."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        name = path.relative_to(root).as_posix()
        for test, clauses in _tests_in(tree):
            for clause in clauses:
                found.setdefault(clause, set()).add(f"{name}::{test}")
    return {clause: sorted(tests) for clause, tests in found.items()}


def _tests_in(tree: ast.Module) -> Iterator[tuple[str, list[str]]]:
    """Each test of a module with the clauses its markers name (its file's, its class's
    and its own)."""
    module = [c for node in tree.body if _assigns_pytestmark(node) for c in _clauses(node)]
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            outer = module + [c for d in node.decorator_list for c in _clauses(d)]
            for member in node.body:
                if _is_test(member):
                    yield f"{node.name}::{member.name}", outer + _own(member)
        elif _is_test(node):
            yield node.name, module + _own(node)


def _is_test(node: ast.stmt) -> TypeGuard[ast.FunctionDef | ast.AsyncFunctionDef]:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
        "test_"
    )


def _own(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [clause for decorator in node.decorator_list for clause in _clauses(decorator)]


def _assigns_pytestmark(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
    )


def _clauses(node: ast.AST) -> list[str]:
    """The text arguments of every ``pytest.mark.part11(...)`` call within ``node``."""
    return [
        arg.value
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == MARKER
        for arg in call.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
    ]


def unknown_clauses(marked: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Markers that name no row of the table."""
    return {clause: tests for clause, tests in marked.items() if clause not in BY_ID}


def untested(marked: Mapping[str, list[str]]) -> list[str]:
    """Rows met by software that no test names."""
    return [c.id for c in CLAUSES if c.met_by == SOFTWARE and not marked.get(c.id)]


HEADER = """\
# Part 11 conformance matrix

<!-- Generated by `python -m tests.part11` from the tests' `part11` markers: do not edit
by hand. Change the table in tests/part11.py or the markers, then regenerate. -->

Each row is a requirement of 21 CFR Part 11 (§11.10, §11.30, §11.50, §11.70, §11.100,
§11.200, §11.300) or a point of ICH E6(R3) and the EMA guideline on computerised systems
in clinical trials (2023) on audit trails, in our own words; the control that meets it in
this system; and the tests that prove it. A test names the row it proves with
`@pytest.mark.part11("<row>")`, and this page is generated from those markers:
`tests/docs/test_part11.py` fails when the page and the markers differ, when a row met by
software has no test left, or when a marker names no row.

"Met by" says who meets the row: **software** (this system, proven by the tests named),
**procedure** (the sponsor's or the site's written procedures: the software cannot meet it
alone), or **not applicable** (with the reason). Where a software row also needs a
procedure (for example a routine review of the audit trail), its control says so.

Separation of duties, revocation and the login answers are described in docs/security.md;
the audit trail and its exports in docs/auditing.md.
"""


def render(marked: Mapping[str, list[str]]) -> str:
    lines = [
        HEADER,
        "| row | requirement | control | met by | proven by |",
        "|---|---|---|---|---|",
    ]
    for clause in CLAUSES:
        tests = "<br>".join(f"`{t}`" for t in marked.get(clause.id, [])) or "—"
        lines.append(
            f"| {clause.id} | {clause.requirement} | {clause.control} | {clause.met_by} | {tests} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs")
    args = parser.parse_args(argv)
    marked = marked_tests()
    problems = [f"unknown row {c!r} named by {t}" for c, t in unknown_clauses(marked).items()]
    problems += [f"row {c} is met by software but no test names it" for c in untested(marked)]
    for problem in problems:
        print(problem, file=sys.stderr)
    text = render(marked)
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            stale = PAGE.relative_to(ROOT)
            print(f"{stale} is out of date: python -m tests.part11", file=sys.stderr)
            return 1
        return 1 if problems else 0
    PAGE.write_text(text, encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
