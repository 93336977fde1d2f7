"""The enrollment service with a defect planted, for the fault suite only: its relay
cannot map a consent to its contract (as a forgotten or wrong mapping would fail).

    python -m tests.faults.broken_enrollment
"""

from __future__ import annotations

import asyncio
from typing import Any

import services.enrollment.publication as publication
from services.enrollment.domain import Subject
from shared.kernel.publication import Publication
from shared.web.runner import configure_logging


def _defect(event: Any) -> dict[str, Any]:
    raise AttributeError("'Consent' object has no attribute 'form_revision'")


_contract, _ = publication.PUBLICATION.events[Subject.ConsentSigned]
publication.PUBLICATION = Publication(
    "enrollment",
    publication.PUBLICATION.records,
    {**publication.PUBLICATION.events, Subject.ConsentSigned: (_contract, _defect)},
    publication.PUBLICATION.occurred_at,
)

from services.enrollment.__main__ import SERVICE, main  # noqa: E402  (after the defect)

if __name__ == "__main__":
    configure_logging(SERVICE)
    asyncio.run(main())
