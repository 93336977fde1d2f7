"""Run the assessments service: HTTP API, relay, and the subscriptions of its views of
the infusion and enrollment topics.

python -m services.assessments
"""

from __future__ import annotations

from fastapi import FastAPI

from services.assessments.api import create_app
from services.assessments.application import AssessmentsApplication
from services.assessments.publication import PUBLICATION
from services.assessments.views import (
    ENROLLMENT_GROUP,
    INFUSION_GROUP,
    InfusionView,
    VitalStatusView,
)
from shared.web.service_main import Running, Upstream, command_main, run, signed_application

SERVICE = "assessments"
create_application = signed_application(AssessmentsApplication)


def create_http(process: Running[AssessmentsApplication]) -> FastAPI:
    infusions, vital = process.view(InfusionView), process.view(VitalStatusView)
    return create_app(process.application, infusions, vital, process.serving)


main = command_main(
    SERVICE, PUBLICATION, create_application, create_http,
    Upstream("infusion", INFUSION_GROUP, InfusionView),
    Upstream("enrollment", ENROLLMENT_GROUP, VitalStatusView),
)  # fmt: skip


if __name__ == "__main__":
    run(SERVICE, main)
