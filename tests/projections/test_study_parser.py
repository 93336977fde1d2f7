"""Which study's parser takes a record, told by its Kafka key before its value is read (no
I/O): another study's parser reads only keys ``<study>/...``, and whatever such a key
filter would pass over wrongly, the first study's parser, which reads every record, keeps
as a dead letter, so that no record is lost silently."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from services.projections.__main__ import known_contracts
from services.projections.ingest import Parser, keyed_to
from services.projections.ledger import NewEntry
from shared.kernel.envelope import CloudEvent
from shared.study import DEFAULT_STUDY_ID
from tests.projections.conftest import published_events

SECOND = "SYN-CART-2"
THIRD = "SYN-CART-3"
SERVED = (DEFAULT_STUDY_ID, SECOND, THIRD)
NOT_CLOUDEVENT = b'{"hello": "world"}'


def parsers() -> dict[str, Parser]:
    return {study: Parser(known_contracts(), study, SERVED) for study in SERVED}


def event(study_id: str | None) -> CloudEvent:
    return published_events(subjects=1)[0].model_copy(update={"studyid": study_id})


def record(key: bytes | None, value: bytes | None) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="trialledger.enrollment.events", partition=0, offset=3, timestamp=0,
        timestamp_type=0, key=key, value=value, checksum=None, serialized_key_size=-1,
        serialized_value_size=-1 if value is None else len(value), headers=(),
    )  # fmt: skip


def outcomes(key: bytes | None, value: bytes | None) -> dict[str, str]:
    """What each study's parser makes of the record: ``entry``, ``dead: <reason>`` or
    ``passed`` (None: another study's)."""
    found = {}
    for study, parser in parsers().items():
        parsed = parser.parse(record(key, value))
        found[study] = (
            "entry" if isinstance(parsed, NewEntry)
            else "passed" if parsed is None
            else f"dead: {parsed}"
        )  # fmt: skip
    return found


def taken(found: dict[str, str]) -> list[str]:
    """The studies whose ledger keeps the record: as an entry or as a dead letter."""
    return [study for study, outcome in found.items() if outcome != "passed"]


@pytest.mark.parametrize(
    ("study", "key", "expected"),
    [
        (DEFAULT_STUDY_ID, b"S-001", True),
        (DEFAULT_STUDY_ID, None, True),
        (DEFAULT_STUDY_ID, b"SYN-CART-2/S-001", True),  # the first study's keys: any
        (SECOND, b"SYN-CART-2/S-001", True),
        (SECOND, b"SYN-CART-2/a/b", True),  # a key holding '/' after the prefix
        (SECOND, b"S-001", False),
        (SECOND, None, False),
        (SECOND, b"SYN-CART-2", False),  # the study id alone is not its prefix
        (SECOND, b"SYN-CART-20/S-001", False),  # nor is a longer study id's
        (SECOND, b"SYN-CART-3/S-001", False),
    ],
)
def test_a_key_is_a_study_s_by_its_prefix(study: str, key: bytes | None, expected: bool) -> None:
    assert keyed_to(key, study) is expected


def test_each_study_s_record_is_an_entry_of_its_own_ledger_alone() -> None:
    for study in (None, DEFAULT_STUDY_ID, SECOND, THIRD):
        published = event(study)
        own = study or DEFAULT_STUDY_ID
        found = outcomes(published.kafka_key(DEFAULT_STUDY_ID), published.to_kafka_value())
        assert found == {s: "entry" if s == own else "passed" for s in SERVED}, study


def test_another_study_s_parser_does_not_read_a_value_keyed_to_another_study() -> None:
    # its value is not even JSON: read, it would fail; passed over unread, it cannot
    for key in (b"S-001", None, b"SYN-CART-3/S-001"):
        assert Parser(known_contracts(), SECOND, SERVED).parse(record(key, b"\xff{")) is None


@pytest.mark.parametrize(
    "key", [b"S-001", None, b"SYN-CART-3/S-001", b"SYN-CART-2", b"NCT-OTHER/S-001"]
)
def test_a_served_study_s_record_keyed_otherwise_is_the_first_study_s_dead_letter(
    key: bytes | None,
) -> None:
    found = outcomes(key, event(SECOND).to_kafka_value())
    assert taken(found) == [DEFAULT_STUDY_ID]
    shown = "none" if key is None else repr(key.decode())
    assert found[DEFAULT_STUDY_ID] == (
        f"dead: key {shown} is not study 'SYN-CART-2''s (its studyid): "
        "that study's ledger reads only keys SYN-CART-2/..."
    )


def test_a_record_keyed_to_one_study_naming_another_is_no_entry_of_either() -> None:
    found = outcomes(b"SYN-CART-3/S-001", event(SECOND).to_kafka_value())
    assert found[SECOND] == found[THIRD] == "passed"  # the third reads it: not its studyid
    assert found[DEFAULT_STUDY_ID].startswith("dead: key 'SYN-CART-3/S-001' is not study")


def test_the_first_study_s_record_is_its_entry_whatever_its_key() -> None:
    # studyid is the authority: a prefixed key takes the record to no other ledger
    for key in (b"SYN-CART-2/S-001", None, b"a/b/c"):
        found = outcomes(key, event(None).to_kafka_value())
        assert found == {DEFAULT_STUDY_ID: "entry", SECOND: "passed", THIRD: "passed"}, key


def test_a_study_not_served_is_the_first_study_s_dead_letter_whatever_its_key() -> None:
    for key in (b"NCT-OTHER/S-001", b"SYN-CART-2/S-001", b"S-001", None):
        found = outcomes(key, event("NCT-OTHER").to_kafka_value())
        assert taken(found) == [DEFAULT_STUDY_ID], key
        assert "'NCT-OTHER' is not served here" in found[DEFAULT_STUDY_ID]


def test_what_is_not_a_cloudevent_or_empty_is_the_first_study_s_whatever_its_key() -> None:
    for key in (b"SYN-CART-2/S-001", b"S-001", None):
        for value, reason in ((NOT_CLOUDEVENT, "not a CloudEvents"), (None, "empty record")):
            found = outcomes(key, value)
            assert taken(found) == [DEFAULT_STUDY_ID], (key, value)
            assert found[DEFAULT_STUDY_ID].startswith(f"dead: {reason}")


def test_a_study_s_own_broken_record_is_its_own_dead_letter() -> None:
    broken = event(SECOND).model_copy(update={"type": "enrollment.NoSuchThing.v1"})
    found = outcomes(broken.kafka_key(DEFAULT_STUDY_ID), broken.to_kafka_value())
    assert taken(found) == [SECOND]
    assert found[SECOND] == "dead: unknown event type 'enrollment.NoSuchThing.v1'"
