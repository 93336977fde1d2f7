"""Run the identity authority, or create the first administrator.

python -m services.identity                      # HTTP API and relay
python -m services.identity bootstrap-admin --user-id ID --name NAME --site SITE
    (reads the password from standard input; refuses once any account exists)
python -m services.identity bootstrap-study-admin --study STUDY --user-id ID --site SITE
    (grants an existing account the administrator role in a served study after the first;
    refuses once the study has an active administrator: they grant roles there)
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from services.identity.api import PasswordChecks, create_app
from services.identity.application import IdentityApplication
from services.identity.domain import AccountPolicy
from services.identity.publication import PUBLICATION
from shared.adapters.eventstore import postgres_env
from shared.kernel.errors import Refusal
from shared.kernel.keys import load_private_key
from shared.kernel.provenance import Actor, Attribution, Provenance
from shared.kernel.settings import (
    PasswordCheckSettings,
    SecuritySettings,
    ServiceSettings,
    separation_of_duties,
)
from shared.study import DEFAULT_STUDY_ID, served_studies
from shared.web.auth import Role, TokenIssuer
from shared.web.runner import configure_logging
from shared.web.service_main import Running, command_main, run

SERVICE = "identity"


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> IdentityApplication:
    policy = AccountPolicy(
        max_failed_attempts=security.max_failed_attempts,
        password_max_age=timedelta(days=security.password_max_age_days)
        if security.password_max_age_days > 0
        else None,
        signing_idle_timeout=timedelta(seconds=security.signing_idle_seconds),
        duties=separation_of_duties(),
    )
    return IdentityApplication(env=postgres_env(settings.database), policy=policy)


def create_http(process: Running[IdentityApplication]) -> FastAPI:
    security = process.security
    private = security.require("TL_TOKEN_PRIVATE_KEY_FILE", security.token_private_key_file)
    issuer = TokenIssuer(
        load_private_key(private), access_ttl=timedelta(seconds=security.token_ttl_seconds)
    )
    checks = PasswordChecks(PasswordCheckSettings.from_env())
    return create_app(process.application, issuer, process.serving, checks)


main = command_main(SERVICE, PUBLICATION, create_application, create_http)


def bootstrap_admin(arguments: list[str]) -> int:
    """Create the first administrator; the only account not created by another one."""
    parser = argparse.ArgumentParser(prog="python -m services.identity bootstrap-admin")
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--name", required=True, help="printed name")
    parser.add_argument("--site", required=True)
    options = parser.parse_args(arguments)
    password = (
        getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    )
    application = create_application(ServiceSettings.from_env(SERVICE), SecuritySettings.from_env())
    if application.has_users():
        print("refused: accounts exist already; administrators create users", file=sys.stderr)
        return 1
    actor = Actor("bootstrap", "bootstrap command", "system", options.site)
    attribution = Attribution(Provenance(actor, "bootstrap"), datetime.now(UTC))
    application.create_user(
        options.user_id,
        options.name,
        options.site,
        frozenset({Role.ADMINISTRATOR}),
        password,
        attribution,
    )
    print(f"administrator {options.user_id} created")
    return 0


def bootstrap_study_admin(arguments: list[str]) -> int:
    """Make an existing account the first administrator of a study after the first (an
    administrator acts in their token's study, so no one can grant the first role there);
    recorded as a grant by the bootstrap command, in that study."""
    parser = argparse.ArgumentParser(prog="python -m services.identity bootstrap-study-admin")
    parser.add_argument("--study", required=True, help="a study served (TL_STUDIES)")
    parser.add_argument("--user-id", required=True, help="an existing account")
    parser.add_argument("--site", required=True, help="the account's site in the study")
    options = parser.parse_args(arguments)
    if options.study == DEFAULT_STUDY_ID or options.study not in served_studies():
        print(f"refused: {options.study} is not a study served after the first (TL_STUDIES)",
              file=sys.stderr)  # fmt: skip
        return 1
    application = create_application(ServiceSettings.from_env(SERVICE), SecuritySettings.from_env())
    administrators = application.administrators_in(options.study)
    if administrators:
        print(f"refused: {options.study} has administrators already ({', '.join(administrators)}); "
              "they grant roles there", file=sys.stderr)  # fmt: skip
        return 1
    actor = Actor("bootstrap", "bootstrap command", "system", options.site)
    provenance = Provenance(actor, "bootstrap", study_id=options.study)
    try:
        application.grant_role(
            options.user_id,
            Role.ADMINISTRATOR,
            Attribution(provenance, datetime.now(UTC)),
            "the study's first administrator (bootstrap-study-admin)",
            options.site,
        )
    except Refusal as refusal:
        print(f"refused: {refusal.code}: {refusal.message}", file=sys.stderr)
        return 1
    print(f"{options.user_id} administers {options.study}")
    return 0


COMMANDS = {"bootstrap-admin": bootstrap_admin, "bootstrap-study-admin": bootstrap_study_admin}

if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1] in COMMANDS:
        configure_logging(SERVICE)
        sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
    # one process: the password-attempt budgets are in its memory (shared.web.throttle),
    # and N processes would give a flood of wrong passwords N times the budget
    run(SERVICE, main, one_process=True)
