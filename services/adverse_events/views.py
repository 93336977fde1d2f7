"""The adverse-events service's local view of infusions, from the infusion topic
(``shared.adapters.infusion_view``): when each subject was infused, at which dose level.

Its rows are keyed by the infusion records' Kafka keys, ``record_key(study, subject)``
(the subject id for the first study, ``<study>/<subject>`` for another): a subject is
looked up by that key, and a study's rows are picked out by ``of_study``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from faststream.kafka import KafkaBroker

from shared.adapters.infusion_view import InfusionView
from shared.adapters.subject_views import kafka_broker, subscribe
from shared.study import record_key

GROUP_ID = "trialledger-adverse-events-infusion-view"
T = TypeVar("T")

__all__ = ["GROUP_ID", "InfusionView", "create_subscriptions", "of_study"]


def of_study(rows: Mapping[str, T], study_id: str) -> dict[str, T]:
    """The rows of ``study_id`` among rows keyed by ``record_key(study, subject)``, by
    subject id (subject ids have no ``/``; study ids neither)."""
    found = {}
    for key, row in rows.items():
        subject = key.split("/", 1)[1] if "/" in key else key
        if record_key(study_id, subject) == key:
            found[subject] = row
    return found


def create_subscriptions(bootstrap: str, infusion_topic: str, view: InfusionView) -> KafkaBroker:
    broker = kafka_broker(bootstrap)
    subscribe(broker, infusion_topic, GROUP_ID, view)
    return broker
