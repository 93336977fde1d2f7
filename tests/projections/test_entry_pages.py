"""How verification reads the ledger: binary COPY cut into pages (``LedgerStore.entry_pages``
and its parser ``CopyRows``), equal to reading the rows one query at a time."""

from __future__ import annotations

import struct

import pytest

from services.projections.domain import EntryRow
from services.projections.ledger import CopyRows, LedgerStore

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = b"\xff\xff"


def copy_bytes(rows: list[EntryRow]) -> bytes:
    """``rows`` as PostgreSQL's binary COPY of (position bigint, payload, leaf_hash bytea)."""
    body = b"".join(
        struct.pack(">hiqi", 3, 8, position, len(payload)) + payload
        + struct.pack(">i", len(leaf)) + leaf
        for position, payload, leaf in rows
    )  # fmt: skip
    return HEADER + body + TRAILER


ROWS: list[EntryRow] = [
    (1, b'{"a":1}', bytes(range(32))),
    (2, b"", b"\x07" * 32),  # an empty payload
    (3, b"x" * 300, b"\x01\x02"),  # a leaf someone shortened
    (5, b"y", b"\x09" * 64),  # a gap before it, and a leaf someone lengthened
    (6, b"z" * 40, b""),
]


def parsed(data: bytes, chunk: int, batch: int) -> list[list[EntryRow]]:
    rows = CopyRows(batch)
    pages = [page for i in range(0, len(data), chunk) for page in rows.feed(data[i : i + chunk])]
    last = rows.finish()
    return [*pages, last] if last else pages


@pytest.mark.parametrize("chunk", [1, 2, 7, 18, 19, 54, 4096])
@pytest.mark.parametrize("batch", [1, 2, 10])
def test_rows_are_read_whatever_the_chunks_the_bytes_arrive_in(chunk: int, batch: int) -> None:
    pages = parsed(copy_bytes(ROWS), chunk, batch)
    assert [row for page in pages for row in page] == ROWS
    assert [len(page) for page in pages[:-1]] == [batch] * (len(pages) - 1)
    assert all(type(value) is bytes for page in pages for _, *values in page for value in values)


def test_a_copy_of_no_rows_is_no_page() -> None:
    assert parsed(copy_bytes([]), 3, 10) == []


def test_a_copy_cut_inside_a_row_is_refused() -> None:
    rows = CopyRows(10)
    list(rows.feed(copy_bytes(ROWS)[:-40]))
    with pytest.raises(ValueError, match="inside a row"):
        rows.finish()


def test_a_stream_that_is_not_a_binary_copy_is_refused() -> None:
    with pytest.raises(ValueError, match="not a binary COPY"):
        list(CopyRows(10).feed(b"1\t\\x00\t\\x00\n" * 3))


@pytest.mark.integration
@pytest.mark.parametrize("batch", [1, 3, 10_000])
async def test_pages_hold_every_entry_as_stored_in_position_order(
    filled: int, ledger: LedgerStore, batch: int
) -> None:
    stored = await ledger.pool.fetch(
        "SELECT position, payload, leaf_hash FROM ledger_entries ORDER BY position"
    )
    pages = [page async for page in ledger.entry_pages(batch)]
    assert [row for page in pages for row in page] == [tuple(r) for r in stored]
    assert len(stored) == filled and all(len(page) <= batch for page in pages)


@pytest.mark.integration
@pytest.mark.parametrize("batch", [1, 4, 100_000])
async def test_leaf_pages_hold_every_leaf_in_position_order(
    filled: int, ledger: LedgerStore, batch: int
) -> None:
    """An ingester's start grows its tree's frontier from these pages, one at a time."""
    pages = [page async for page in ledger.leaf_pages(batch)]
    assert [leaf for page in pages for leaf in page] == await ledger.leaves_between(0, filled)
    assert await ledger.size() == filled and all(len(page) <= batch for page in pages)


@pytest.mark.integration
async def test_the_ledger_is_read_in_copies_of_span_entries_each_after_the_last(
    filled: int, ledger: LedgerStore
) -> None:
    """Several COPY statements (spans of 3, 4 and ``filled``, a multiple or not) read the
    same entries as one."""
    whole = [row async for page in ledger.entry_pages() for row in page]
    for span in (3, 4, filled):
        assert [row async for page in ledger.entry_pages(5, span) for row in page] == whole


@pytest.mark.integration
async def test_a_reading_left_after_its_first_page_leaves_the_ledger_readable(
    filled: int, ledger: LedgerStore
) -> None:
    """A caller that stops early (an error while checking a page) stops the COPY under way;
    the connection goes back to the pool, and the next reading gets every entry."""
    for _ in range(3):  # more times than the pool's idle connections, had one been lost
        pages = ledger.entry_pages(2, span=3)
        assert len(await anext(pages)) == 2
        await pages.aclose()
    assert sum([len(page) async for page in ledger.entry_pages(2, span=3)]) == filled
