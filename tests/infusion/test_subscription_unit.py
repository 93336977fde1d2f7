"""The subscription's handler, unit-tested on faststream's in-memory broker (the real
broker path is proven end to end in tests/e2e/test_infusion.py)."""

from __future__ import annotations

import pytest
from faststream.kafka import TestKafkaBroker

from services.infusion.domain import Enrollment
from services.infusion.views import EnrollmentView, create_subscriptions
from tests.projections.conftest import published_events

pytestmark = pytest.mark.integration


async def test_the_subscription_handler_applies_what_it_receives(view: EnrollmentView) -> None:
    # an in-memory broker is fine here: this tests the handler, not Kafka
    broker = create_subscriptions("localhost:9092", "enrollment.events", view)
    events = [e for e in published_events(subjects=1)]
    async with TestKafkaBroker(broker) as test_broker:
        for event in events:
            await test_broker.publish(event.to_kafka_value(), "enrollment.events")
    assert await view.enrollment("S-001") == Enrollment("enrolled", 1)
