"""The ledger verified page by page (``LedgerVerification``, no I/O): the pages a ledger is
read in change nothing of what verification finds, nor where; a tamper on a later page,
or across two, is found at its position; and no page is kept once it is verified."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.projections.domain import (
    LEAF_PREFIX,
    Checkpoint,
    EntryRow,
    Finding,
    LedgerVerification,
    Trust,
    entry_leaf,
    sign_checkpoint,
)
from services.projections.merkle import Frontier, leaf_hash, root
from services.projections.witnessing import CosignedRoots

KEY = Ed25519PrivateKey.generate()
ORIGIN = "trial-ledger.local/test"
TRUST = Trust([KEY.public_key()], ORIGIN)
SIZE = 10
WHEN = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def payload(position: int) -> bytes:
    return f'{{"id":"event-{position}","note":"entry {position}"}}'.encode()


def appended(count: int = SIZE) -> list[EntryRow]:
    """The entries 1..count as the ledger appended them."""
    return [(p, payload(p), entry_leaf(p, payload(p))) for p in range(1, count + 1)]


def checkpoint_over(rows: Sequence[EntryRow]) -> list[Checkpoint]:
    frontier = Frontier()
    frontier.extend([leaf for _, _, leaf in rows])
    return [sign_checkpoint(KEY, ORIGIN, frontier.size, frontier.root(), WHEN)]


class Page(list[EntryRow]):
    """A page that can be watched (a plain list takes no weak reference)."""


def verified(rows: Sequence[EntryRow], page: int) -> list[Finding]:
    """The findings of verifying ``rows`` read ``page`` entries a page, against the signed
    checkpoint over the ledger as appended."""
    verification = LedgerVerification(checkpoint_over(appended()), TRUST)
    for start in range(0, len(rows), page):
        verification.add(rows[start : start + page])
    return verification.finish().findings


def renumbered(rows: list[EntryRow], delta: int, after: int) -> list[EntryRow]:
    """``rows`` with every position after ``after`` moved by ``delta`` (leaves kept)."""
    return [(p + delta if p > after else p, data, leaf) for p, data, leaf in rows]


def altered(rows: list[EntryRow]) -> list[EntryRow]:
    rows[4] = (5, b'{"id":"event-5","note":"changed"}', rows[4][2])
    return rows


def swapped(first: int) -> Callable[[list[EntryRow]], list[EntryRow]]:
    def swap(rows: list[EntryRow]) -> list[EntryRow]:
        a, b = rows[first - 1], rows[first]
        rows[first - 1], rows[first] = (first, b[1], b[2]), (first + 1, a[1], a[2])
        return rows

    return swap


def removed_and_renumbered(rows: list[EntryRow]) -> list[EntryRow]:
    del rows[3]
    return renumbered(rows, -1, 4)


def a_gap(rows: list[EntryRow]) -> list[EntryRow]:
    del rows[5]
    return rows


def inserted_with_its_leaf(rows: list[EntryRow]) -> list[EntryRow]:
    moved = renumbered(rows, 1, 5)
    return [*moved[:5], (6, payload(2), entry_leaf(6, payload(2))), *moved[5:]]


def edited_with_its_leaf(rows: list[EntryRow]) -> list[EntryRow]:
    data = b'{"id":"event-7","note":"rewritten"}'
    rows[6] = (7, data, entry_leaf(7, data))
    return rows


def cut_short(rows: list[EntryRow]) -> list[EntryRow]:
    return rows[:-2]


# each tampering, and the first finding (position, kind) verification names
TAMPERING = [
    pytest.param(lambda rows: rows, None, id="untouched"),
    pytest.param(altered, (5, "altered"), id="an_edited_payload"),
    pytest.param(swapped(4), (4, "reordered"), id="two_swapped_entries"),
    pytest.param(swapped(3), (3, "reordered"), id="two_swapped_entries_one_further"),
    pytest.param(removed_and_renumbered, (4, "missing"), id="a_removal_renumbered"),
    pytest.param(a_gap, (6, "missing"), id="a_gap"),
    pytest.param(inserted_with_its_leaf, (6, "inserted"), id="an_insertion"),
    pytest.param(edited_with_its_leaf, (1, "checkpoint_mismatch"), id="an_edit_and_its_leaf"),
    pytest.param(cut_short, (9, "missing"), id="the_newest_entries_removed"),
]


@pytest.mark.parametrize(("tamper", "first"), TAMPERING)
@pytest.mark.parametrize("page", [1, 3, 4, 5])
def test_pages_of_any_size_find_what_one_page_finds_where_it_finds_it(
    tamper: Callable[[list[EntryRow]], list[EntryRow]],
    first: tuple[int, str] | None,
    page: int,
) -> None:
    rows = tamper(appended())
    whole = verified(rows, len(rows))
    assert verified(rows, page) == whole
    assert (whole[0].position, whole[0].kind) == first if first else whole == []


def test_a_tamper_on_the_second_page_is_found_at_its_position() -> None:
    rows = altered(appended())  # position 5: on the second page of 4
    assert [(f.position, f.kind) for f in verified(rows, 4)] == [(5, "altered")]


def test_entries_read_after_a_problem_are_counted_where_a_moved_one_is_looked_for() -> None:
    rows = appended()
    a, b = rows[1], rows[8]  # entries 2 and 9 exchanged: 9 is on the last page of 4
    rows[1], rows[8] = (2, b[1], b[2]), (9, a[1], a[2])
    assert [(f.position, f.kind, f.detail) for f in verified(rows, 4)] == [
        (2, "reordered", "the entry here was appended at 9")
    ]


def test_no_page_is_kept_once_verified() -> None:
    verification = LedgerVerification(checkpoint_over(appended()), TRUST)
    rows = appended()
    watched: list[weakref.ref[Page]] = []
    for start in range(0, SIZE, 4):
        page = Page(rows[start : start + 4])
        watched.append(weakref.ref(page))
        verification.add(page)
        del page
    gc.collect()
    assert [ref() for ref in watched] == [None, None, None]
    assert verification.finish().ok


def test_an_entry_leaf_is_the_leaf_of_its_position_and_payload() -> None:
    data = payload(12)
    assert entry_leaf(12, data) == leaf_hash(LEAF_PREFIX + b"12\n" + data)


@pytest.mark.parametrize("page", [1, 3, 4, SIZE])
def test_the_roots_at_cosigned_sizes_are_those_of_the_entries_read_in_any_pages(
    page: int,
) -> None:
    rows = altered(appended())  # past a problem too: a witness's roots go on
    roots = CosignedRoots([3, 4, 8])
    for start in range(0, SIZE, page):
        roots.add(rows[start : start + page])
    leaves = [entry_leaf(p, data) for p, data, _ in rows]
    assert roots.roots == {size: root(leaves[:size]) for size in (3, 4, 8)}
