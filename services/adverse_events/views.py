"""The adverse-events service's local view of infusions, from the infusion topic
(``shared.adapters.infusion_view``): when each subject was infused, at which dose level.

Its rows are keyed by the infusion records' Kafka keys, ``record_key(study, subject)``
(the subject id for the first study, ``<study>/<subject>`` for another): a subject is
looked up by that key, and a study's rows are read with ``all_infused(study)``."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from shared.adapters.infusion_view import InfusionView
from shared.adapters.subject_views import kafka_broker, subscribe

GROUP_ID = "trialledger-adverse-events-infusion-view"

__all__ = ["GROUP_ID", "InfusionView", "create_subscriptions"]


def create_subscriptions(bootstrap: str, infusion_topic: str, view: InfusionView) -> KafkaBroker:
    broker = kafka_broker(bootstrap)
    subscribe(broker, infusion_topic, GROUP_ID, view)
    return broker
