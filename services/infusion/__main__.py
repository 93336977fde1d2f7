"""Run the infusion service: HTTP API, relay, and the enrollment view's subscription.

python -m services.infusion
"""

from __future__ import annotations

import os
from decimal import Decimal

from fastapi import FastAPI

from services.infusion.api import create_app
from services.infusion.application import InfusionApplication
from services.infusion.publication import PUBLICATION
from services.infusion.rules import InfusionRules
from services.infusion.views import GROUP_ID, EnrollmentView
from shared.adapters.cohort import CohortView
from shared.adapters.eventstore import postgres_env
from shared.kernel.settings import SecuritySettings, ServiceSettings, SettingsError
from shared.web.service_main import Running, Upstream, command_main, record_signer, run

SERVICE = "infusion"
COHORT_GROUP = "trialledger-infusion-cohort-view"


def infusion_rules(env: dict[str, str] | None = None) -> InfusionRules:
    """The first study's protocol window and dose tolerance, as the operator may override
    them (TL_INFUSION_*, which predate studies; defaults: the study's definition). Every
    other study served is held to its own definition's (``InfusionApplication.rules_of``)."""
    env = dict(os.environ if env is None else env)
    default = InfusionRules()
    try:
        return InfusionRules(
            dose_tolerance=Decimal(env.get("TL_INFUSION_DOSE_TOLERANCE", default.dose_tolerance)),
            window_min_days=int(env.get("TL_INFUSION_WINDOW_MIN_DAYS", default.window_min_days)),
            window_max_days=int(env.get("TL_INFUSION_WINDOW_MAX_DAYS", default.window_max_days)),
        )
    except (ArithmeticError, ValueError):
        raise SettingsError("TL_INFUSION_* rules must be numbers") from None


def create_application(
    settings: ServiceSettings, security: SecuritySettings
) -> InfusionApplication:
    return InfusionApplication(
        env=postgres_env(settings.database), signer=record_signer(security), rules=infusion_rules()
    )


def create_http(process: Running[InfusionApplication]) -> FastAPI:
    view, cohort = process.view(EnrollmentView), process.view(CohortView)
    return create_app(process.application, view, process.serving, cohort=cohort)


main = command_main(
    SERVICE, PUBLICATION, create_application, create_http,
    Upstream("enrollment", GROUP_ID, EnrollmentView),
    Upstream("adverse_events", COHORT_GROUP, CohortView),
)  # fmt: skip


if __name__ == "__main__":
    run(SERVICE, main)
