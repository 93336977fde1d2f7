"""Run the enrollment service: its HTTP API and its relay, in one process.

    python -m services.enrollment

Settings come from ``TL_*`` environment variables (docs/operations.md).
"""

from __future__ import annotations

from fastapi import FastAPI

from services.enrollment.api import create_app
from services.enrollment.application import EnrollmentApplication
from services.enrollment.publication import PUBLICATION
from shared.adapters.cohort import CohortView
from shared.web.service_main import Running, Upstream, command_main, run, signed_application

SERVICE = "enrollment"
COHORT_GROUP = "trialledger-enrollment-cohort-view"
create_application = signed_application(EnrollmentApplication)


def create_http(process: Running[EnrollmentApplication]) -> FastAPI:
    cohort = process.view(CohortView)
    return create_app(process.application, process.serving, cohort=cohort)


main = command_main(
    SERVICE, PUBLICATION, create_application, create_http,
    Upstream("adverse_events", COHORT_GROUP, CohortView),
)  # fmt: skip


if __name__ == "__main__":
    run(SERVICE, main)
