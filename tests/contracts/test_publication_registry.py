"""Every event class a service's records can store has a contract, by class.

The registry (``shared.kernel.publication.Publication``) checks itself when it is built; these
tests prove that the check sees every record of every service, refuses a forgotten or a
stray mapping, and that nothing in the code matches events by name strings instead.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, event

from services.enrollment.domain import Subject
from services.projections.__main__ import source_topics
from services.projections.stores import COMMAND_SERVICES, store_endpoints
from shared.contract_docs.discovery import channels, publication_of
from shared.contracts.enrollment import SubjectRegisteredV1
from shared.kernel.access import AccessDenial
from shared.kernel.publication import Mapped, Publication, UnmappedEvents, stored_event_classes
from shared.kernel.records import Record, SubjectRecord

ROOT = Path(__file__).resolve().parents[2]
SERVICES = [channel.service for channel in channels()]


def records_defined_in(service: str) -> set[type[Aggregate]]:
    """Every aggregate class defined in the modules of ``services/<service>/``."""
    package = importlib.import_module(f"services.{service}")
    found: set[type[Aggregate]] = set()
    for info in pkgutil.iter_modules(package.__path__):
        if info.name == "__main__":
            continue
        module = importlib.import_module(f"services.{service}.{info.name}")
        found |= {
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, Aggregate)
            and value.__module__ == module.__name__
        }
    return found


def test_the_ledger_follows_and_compares_every_service_with_a_topic() -> None:
    assert sorted(SERVICES) == sorted(COMMAND_SERVICES)  # the stores verify reads
    assert source_topics({}) == [f"trialledger.{s}.events" for s in COMMAND_SERVICES]
    env = {"TL_INFUSION_HTTP_PORT": "9102", "TL_IDENTITY_URL": "http://identity:8100"}
    urls = {e.service: e.url for e in store_endpoints(env)}
    assert (urls["infusion"], urls["identity"]) == ("http://127.0.0.1:9102", "http://identity:8100")


@pytest.mark.parametrize("service", SERVICES)
def test_every_record_class_of_a_service_is_in_its_publication(service: str) -> None:
    publication = publication_of(service)
    assert records_defined_in(service) == set(publication.records)


@pytest.mark.parametrize("service", SERVICES)
def test_every_storable_event_class_has_a_contract(service: str) -> None:
    publication = publication_of(service)
    expected = {cls for record in publication.records for cls in stored_event_classes(record)}
    assert set(publication.storable) == expected | {AccessDenial.AccessDenied}
    assert set(publication.events) == expected


def test_the_classes_a_record_stores_are_those_its_event_methods_trigger() -> None:
    stored = stored_event_classes(Subject)
    assert Subject.SubjectRegistered in stored  # its __init__'s created event
    assert SubjectRecord.RecordSigned in stored  # inherited: the class of the method's owner
    assert Subject.Created not in stored  # eventsourcing's default, never triggered


class Sample(Record):
    """A record with two events, for the registry's own checks."""

    @event("SampleOpened")
    def __init__(self, note: str) -> None:
        self.note = note

    @event("SampleAmended")
    def amend(self, note: str) -> None:
        self.note = note


def opened(e: Any) -> dict[str, Any]:
    return {"site_id": e.note}


def test_a_storable_event_without_a_contract_stops_the_service_at_import() -> None:
    with pytest.raises(UnmappedEvents, match=r"stored but not mapped: Sample\.SampleAmended"):
        Publication(
            "sample", {Sample: "Sample"}, {Sample.SampleOpened: (SubjectRegisteredV1, opened)}
        )


def test_a_mapping_that_no_record_stores_is_refused() -> None:
    stray = {
        Sample.SampleOpened: (SubjectRegisteredV1, opened),
        Sample.SampleAmended: (SubjectRegisteredV1, opened),
        Subject.ConsentSigned: (SubjectRegisteredV1, opened),
    }
    with pytest.raises(UnmappedEvents, match=r"mapped but never stored: Subject\.ConsentSigned"):
        Publication("sample", {Sample: "Sample"}, stray)


class Other(SubjectRecord):
    @event("OtherOpened")
    def __init__(self, subject_id: str, at: datetime) -> None:
        self.subject_id = subject_id


def test_a_class_several_records_store_needs_a_rule_for_its_record_type() -> None:
    events: dict[type, Mapped] = {Other.OtherOpened: (SubjectRegisteredV1, opened)}
    events.update(publication_of("enrollment").events)
    with pytest.raises(UnmappedEvents, match="needs record_type_of"):
        Publication("sample", {Subject: "Subject", Other: "Other"}, events)


SOURCE_DIRS = ("services", "shared")
# Comparing a class's name, or an event type written out as a string, is how a forgotten
# mapping stays silent; classes and contracts' ``event_type`` constants are checked.
NAME_MATCH = re.compile(r"__name__\s*(==|!=|in\b)|\"[A-Z][A-Za-z]+\.v\d+\"")


def test_code_matches_events_by_class_not_by_name() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in SOURCE_DIRS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if NAME_MATCH.search(line) and "event_type = " not in line and "__main__" not in line
    ]
    assert not offending, "\n".join(offending)
