"""The CloudEvents Python SDK reads every record: the compact form as published, and a
first-form record (null attributes) once its nulls are removed, as docs/integrating.md
says. The whole demo's records: tests/e2e/test_demo.py."""

from __future__ import annotations

import pytest
from cloudevents.core.exceptions import BaseCloudEventException

from shared.kernel.envelope import CloudEvent
from tests.contracts.cloudevents_sdk import read, without_nulls
from tests.enrollment.test_publication import published


def compact(event: CloudEvent) -> CloudEvent:
    data_schema = f"urn:trial-ledger:schema:{event.type}"
    return event.model_copy(update={"dataschema": data_schema})


def test_the_sdk_reads_compact_records_with_their_attributes() -> None:
    for event in map(compact, published()):
        read_back = read(event.to_kafka_value())
        assert (read_back.get_id(), read_back.get_type()) == (str(event.id), event.type)
        assert read_back.get_subject() == "S-001"
        assert read_back.get_dataschema() == event.dataschema
        assert read_back.get_extension("correlationid") == event.correlationid
        assert read_back.get_data() == event.data


def test_a_compact_record_without_a_subject_is_read_and_a_first_form_one_after_the_recipe() -> None:
    event = published()[0].model_copy(update={"subject": None})
    with pytest.raises(BaseCloudEventException):  # why the compact form exists
        read(event.to_kafka_value())
    assert read(without_nulls(event.to_kafka_value())).get_subject() is None
    assert read(compact(event).to_kafka_value()).get_subject() is None
