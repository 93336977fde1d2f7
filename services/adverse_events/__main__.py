"""Run the adverse-events service: HTTP API, relay, and the infusion view's subscription.

python -m services.adverse_events
"""

from __future__ import annotations

from fastapi import FastAPI

from services.adverse_events.api import create_app
from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.publication import PUBLICATION
from services.adverse_events.views import GROUP_ID, InfusionView
from shared.web.service_main import Running, Upstream, command_main, run, signed_application

SERVICE = "adverse_events"
create_application = signed_application(AdverseEventsApplication)


def create_http(process: Running[AdverseEventsApplication]) -> FastAPI:
    view = process.view(InfusionView)
    return create_app(process.application, view, process.serving)


main = command_main(
    SERVICE, PUBLICATION, create_application, create_http,
    Upstream("infusion", GROUP_ID, InfusionView),
)  # fmt: skip


if __name__ == "__main__":
    run(SERVICE, main)
