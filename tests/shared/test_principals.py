"""A signing assertion fits one signature: the caller's own, of the step's meaning and
purpose; one that names an earlier version of the same record is a race lost, not a
refused signer (pure, no I/O)."""

from __future__ import annotations

import pytest

from shared.kernel.errors import OutOfSequence
from shared.kernel.principals import RecordChanged, SignatureRefused, check_assertion
from shared.kernel.provenance import Meaning
from tests.support import principal, signing

RECORD = "adverse_events/grade/0b9c4b1e-6f59-4cbb-8c1e-3f0d2a9e7a10"


def check(signed: str, expected: str) -> None:
    check_assertion(signing(Meaning.AUTHORSHIP, purpose=signed), principal(),
                    Meaning.AUTHORSHIP, expected)  # fmt: skip


def test_a_signature_of_an_earlier_version_of_the_record_is_a_409_naming_both() -> None:
    with pytest.raises(RecordChanged) as changed:
        check(f"{RECORD}@3", f"{RECORD}@5")
    assert isinstance(changed.value, OutOfSequence)  # answered 409, nothing recorded
    assert changed.value.details == {"signed_version": 3, "current_version": 5}


@pytest.mark.parametrize(
    "signed",
    [
        f"{RECORD}@6",  # a version the record never had
        "adverse_events/grade/another@1",  # another record
        "adverse_events/causality/0b9c4b1e-6f59-4cbb-8c1e-3f0d2a9e7a10@3",  # another step
        f"{RECORD}@three",
        f"{RECORD}",
        "enrollment/consent/S-001",  # a purpose without versions
    ],
)
def test_any_other_purpose_is_a_refused_signature(signed: str) -> None:
    with pytest.raises(SignatureRefused):
        check(signed, f"{RECORD}@5")


def test_the_purpose_asked_for_is_accepted() -> None:
    check(f"{RECORD}@5", f"{RECORD}@5")
