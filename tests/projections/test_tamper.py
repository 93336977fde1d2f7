"""Tampering as a PostgreSQL superuser (triggers switched off) is found by `verify`,
at the exact position, with what kind of change it was."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from services.projections.application import ProjectionsApplication
from services.projections.domain import EntryRow
from tests.projections.conftest import Feed

pytestmark = pytest.mark.integration


async def first_finding(projections: ProjectionsApplication) -> tuple[int, str]:
    report = await projections.verify_unattributed()
    assert not report.ok
    first = report.first
    assert first is not None
    return first.position, first.kind


@pytest.mark.part11("11.10(a)")
async def test_untouched_ledger_verifies(filled: int, projections: ProjectionsApplication) -> None:
    report = await projections.verify_unattributed()
    assert report.ok and report.entries == filled


def insert_copy_of_entry_2_at_6(leaf: str) -> str:
    """SQL moving entries 6.. up by one and inserting a copy of entry 2 (new event id) at 6."""
    return (
        "UPDATE ledger_entries SET position = position + 1000 WHERE position >= 6;\n"
        "UPDATE ledger_entries SET position = position - 999 WHERE position >= 1006;\n"
        "INSERT INTO ledger_entries SELECT 6, gen_random_uuid(), source, event_type, "
        "subject_id, record_id, record_version, occurred_at, recorded_at, ingested_at, topic, "
        f"kafka_partition, kafka_offset, payload, {leaf} FROM ledger_entries WHERE position = 2;"
    )


def truncated_and_refilled(edit: str) -> str:
    """SQL emptying the ledger and filling it again from a copy of its rows, ``edit``
    (SQL on the copy, the table ``saved``) applied first."""
    return (
        "CREATE TEMP TABLE saved AS SELECT * FROM ledger_entries;\n"
        "TRUNCATE ledger_entries;\n"
        f"{edit}\n"
        "INSERT INTO ledger_entries SELECT * FROM saved;"
    )


# entry 2's payload hashed as a leaf at position 6, as a careful forger would
RECOMPUTED_LEAF = (
    "sha256('\\x00'::bytea || convert_to(E'trial-ledger/entry/v1\\n6\\n', 'UTF8') || payload)"
)


# Each tampering, as the superuser's SQL, and where verify finds it, as what.
TAMPERING = [
    pytest.param(
        "UPDATE ledger_entries SET payload = "
        "convert_to(replace(convert_from(payload, 'UTF8'), 'ICF v2.1', 'ICF v9.9'), 'UTF8') "
        "WHERE position = 2;",
        (2, "altered"),
        id="an_edited_field_is_found_at_its_position",
    ),
    pytest.param(
        "DELETE FROM ledger_entries WHERE position = 5;",
        (5, "missing"),
        id="a_deleted_row_is_found_as_missing",
    ),
    pytest.param(
        "DELETE FROM ledger_entries WHERE position = 4;\n"
        "UPDATE ledger_entries SET position = position - 1 WHERE position > 4;",
        (4, "missing"),
        id="a_deleted_row_with_the_rest_renumbered_is_found_as_missing",
    ),
    pytest.param(
        "UPDATE ledger_entries SET position = 100000 WHERE position = 3;\n"
        "UPDATE ledger_entries SET position = 3 WHERE position = 7;\n"
        "UPDATE ledger_entries SET position = 7 WHERE position = 100000;",
        (3, "reordered"),
        id="two_swapped_rows_are_found_as_reordered",
    ),
    pytest.param(
        "UPDATE ledger_entries SET position = 100000 WHERE position = 4;\n"
        "UPDATE ledger_entries SET position = 4 WHERE position = 5;\n"
        "UPDATE ledger_entries SET position = 5 WHERE position = 100000;",
        (4, "reordered"),
        id="two_adjacent_swapped_rows_are_found_as_reordered",
    ),
    pytest.param(
        "UPDATE ledger_entries SET leaf_hash = '\\x0102'::bytea WHERE position = 3;",
        (3, "altered"),
        id="a_stored_leaf_shortened_is_found_as_altered",
    ),
    pytest.param(
        "UPDATE ledger_entries SET leaf_hash = leaf_hash || leaf_hash WHERE position = 3;",
        (3, "altered"),
        id="a_stored_leaf_lengthened_is_found_as_altered",
    ),
    pytest.param(
        "UPDATE ledger_entries SET payload = ''::bytea WHERE position = 8;",
        (8, "altered"),
        id="an_emptied_payload_is_found_as_altered",
    ),
    pytest.param(
        insert_copy_of_entry_2_at_6("leaf_hash"),
        (6, "inserted"),
        id="an_inserted_row_is_found_at_its_position",
    ),
    pytest.param(
        insert_copy_of_entry_2_at_6(RECOMPUTED_LEAF),
        (6, "inserted"),
        id="an_inserted_row_with_a_correct_leaf_is_still_found_at_its_position",
    ),
]


def read_in_pages_of(
    size: int, projections: ProjectionsApplication, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Verification's reads of the ledger, ``size`` entries a page; the sizes of the pages
    read are recorded in the list returned."""
    pages: list[int] = []
    read = projections.ledger.entry_pages

    async def in_pages(batch: int = size) -> AsyncIterator[Sequence[EntryRow]]:
        async for page in read(size):
            pages.append(len(page))
            yield page

    monkeypatch.setattr(projections.ledger, "entry_pages", in_pages)
    return pages


@pytest.mark.parametrize("page", [None, 4], ids=["pages_as_read", "pages_of_4"])
@pytest.mark.parametrize(("sql", "found"), TAMPERING)
@pytest.mark.part11("11.10(a)")
async def test_tampering_is_found_at_its_position_as_what_it_was(
    filled: int,
    feed: Feed,
    projections: ProjectionsApplication,
    sql: str,
    found: tuple[int, str],
    page: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the pages the ledger is read in (4 entries: a tamper on a later page, or
    across two)."""
    if page is not None:
        read_in_pages_of(page, projections, monkeypatch)
    await feed.as_superuser(sql)
    assert await first_finding(projections) == found


async def test_verify_reads_in_pages_and_finds_a_tamper_on_the_third_at_its_position(
    filled: int, feed: Feed, projections: ProjectionsApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = read_in_pages_of(4, projections, monkeypatch)
    await feed.as_superuser(
        "UPDATE ledger_entries SET payload = convert_to(replace(convert_from(payload, 'UTF8'), "
        "'\"subject\"', '\"Subject\"'), 'UTF8') WHERE position = 10;"
    )
    assert await first_finding(projections) == (10, "altered")
    assert pages == [4, 4, 4, 4, 2], "every page read, after the tamper too"


@pytest.mark.part11("11.10(a)")
async def test_truncated_and_refilled_short_is_found_as_missing(
    filled: int, feed: Feed, projections: ProjectionsApplication
) -> None:
    await feed.as_superuser(
        truncated_and_refilled(f"DELETE FROM saved WHERE position > {filled - 2};"),
    )
    assert await first_finding(projections) == (filled - 1, "missing")


async def test_truncated_and_refilled_with_an_edit_is_found_at_the_edit(
    filled: int, feed: Feed, projections: ProjectionsApplication
) -> None:
    await feed.as_superuser(
        truncated_and_refilled(
            "UPDATE saved SET payload = convert_to(replace(convert_from(payload, 'UTF8'), "
            "'\"dose_level\":1', '\"dose_level\":4'), 'UTF8');"
        ),
    )
    position, kind = await first_finding(projections)
    assert kind == "altered"
    enrolled = await projections.ledger.pool.fetchval(
        "SELECT min(position) FROM ledger_entries WHERE event_type = 'SubjectEnrolled.v1'"
    )
    assert position == enrolled


@pytest.mark.part11("11.10(a)")
async def test_an_edit_with_its_hash_recomputed_breaks_the_signed_checkpoint(
    filled: int, feed: Feed, projections: ProjectionsApplication
) -> None:
    await feed.as_superuser(
        "UPDATE ledger_entries SET payload = convert_to(replace(convert_from(payload, 'UTF8'), "
        "'ICF v2.1', 'ICF v9.9'), 'UTF8') WHERE position = 2;\n"
        "UPDATE ledger_entries SET leaf_hash = sha256('\\x00'::bytea || "
        "convert_to(E'trial-ledger/entry/v1\\n2\\n', 'UTF8') || payload) WHERE position = 2;",
    )
    report = await projections.verify_unattributed()
    assert not report.ok
    assert report.findings[0].kind == "checkpoint_mismatch"


@pytest.mark.part11("11.10(a)")
async def test_a_forged_checkpoint_signature_is_found(
    filled: int, feed: Feed, projections: ProjectionsApplication
) -> None:
    await feed.as_superuser(
        "UPDATE checkpoints SET root = sha256(root) "
        "WHERE tree_size = (SELECT max(tree_size) FROM checkpoints);",
    )
    report = await projections.verify_unattributed()
    assert [f.kind for f in report.findings] == ["bad_signature"]
