"""What the adverse-events relay publishes for the records every service keeps."""

from __future__ import annotations

from services.adverse_events.application import AdverseEventsApplication
from services.adverse_events.publication import to_contract
from shared.contracts.security import AccessDeniedV1
from shared.kernel.access import Denial
from tests.support import MEMORY


def test_a_recorded_denial_is_published_as_access_denied() -> None:
    # A denial has no subject_id of its own: reading one stopped the relay at the first 403
    app = AdverseEventsApplication(env=MEMORY)
    denial = Denial(
        user_id="mon.li", printed_name="Mon Li", site="ZJU-1", roles=("monitor",),
        command="adverse_events.report", reason_code="role_not_permitted",
        subject_id="S-001", correlation_id="corr-1", client_id=None,
    )  # fmt: skip
    app.record_denial(denial)
    [(_, stored)] = list(app.stored_events())
    published = to_contract(stored)
    assert isinstance(published, AccessDeniedV1)
    assert (published.subject_id, published.command) == ("S-001", "adverse_events.report")
