"""RFC 6962 Merkle hashing: published vectors, round trips, forgeries, a reference model.

The vectors are the Certificate Transparency project's Merkle tree test vectors (the
leaves, roots and proofs its implementations test RFC 6962 with). The recursive
functions below transcribe RFC 6962 section 2.1 (MTH, PATH, SUBPROOF) literally and
serve as the model for the fast versions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projections.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    leaf_hash,
    leaf_hasher,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTOR_DATA = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
VECTOR_LEAVES = [leaf_hash(bytes.fromhex(data)) for data in VECTOR_DATA]
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(101)]
SIZES = range(1, 21)


# --- the reference model: RFC 6962 section 2.1, word for word ---------------------------


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_root(d: Sequence[bytes]) -> bytes:
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = split(len(d))
    return node_hash(reference_root(d[:k]), reference_root(d[k:]))


def reference_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = split(len(d))
    if m < k:
        return [*reference_path(m, d[:k]), reference_root(d[k:])]
    return [*reference_path(m - k, d[k:]), reference_root(d[:k])]


def reference_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [reference_root(d)]
    k = split(len(d))
    if m <= k:
        return [*reference_subproof(m, d[:k], b), reference_root(d[k:])]
    return [*reference_subproof(m - k, d[k:], False), reference_root(d[:k])]


# --- helpers ------------------------------------------------------------------------------


def flip(value: bytes, bit: int) -> bytes:
    mutable = bytearray(value)
    mutable[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutable)


def proven_leaves(n: int) -> Iterator[tuple[int, list[bytes]]]:
    """Each leaf's index in the tree of the first ``n`` of ``LEAVES``, with its inclusion
    proof in that tree."""
    for i in range(n):
        yield i, inclusion_proof(LEAVES[:n], i)


def bit_flips(proof: Sequence[bytes]) -> list[list[bytes]]:
    """Every proof that differs from ``proof`` by one bit, at three bits of each node."""
    return [
        [flip(node, bit) if j == i else node for j, node in enumerate(proof)]
        for i, node in enumerate(proof)
        for bit in (0, 131, 255)
    ]


# --- published vectors --------------------------------------------------------------------


ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
PATH_OF_LEAF_0_IN_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]
PROOF_FROM_6_TO_8 = [
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
]


@pytest.mark.parametrize(("size", "expected"), ROOTS.items())
def test_root_of_the_first_leaves_matches_the_published_vector(size: int, expected: str) -> None:
    assert root(VECTOR_LEAVES[:size]).hex() == expected


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert EMPTY_ROOT.hex() == expected
    assert root([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"").hex() == ROOTS[1]
    assert node_hash(VECTOR_LEAVES[0], VECTOR_LEAVES[1]).hex() == ROOTS[2]
    assert leaf_hash(VECTOR_LEAVES[0] + VECTOR_LEAVES[1]) != node_hash(*VECTOR_LEAVES[:2])


def test_inclusion_proof_of_leaf_0_in_8_matches_the_published_vector() -> None:
    proof = inclusion_proof(VECTOR_LEAVES, 0)
    assert [node.hex() for node in proof] == PATH_OF_LEAF_0_IN_8
    assert verify_inclusion(VECTOR_LEAVES[0], 0, 8, proof, bytes.fromhex(ROOTS[8]))


def test_consistency_proof_from_6_to_8_matches_the_published_vector() -> None:
    proof = consistency_proof(VECTOR_LEAVES, 6)
    assert [node.hex() for node in proof] == PROOF_FROM_6_TO_8
    old, new = bytes.fromhex(ROOTS[6]), bytes.fromhex(ROOTS[8])
    assert verify_consistency(6, 8, old, new, proof)


# --- agreement with the reference model ---------------------------------------------------


@pytest.mark.parametrize("n", range(71))
def test_root_equals_the_recursive_definition(n: int) -> None:
    assert root(LEAVES[:n]) == reference_root(LEAVES[:n])


@pytest.mark.parametrize("n", [0, 1, 5, 8, 13])
def test_a_copy_of_a_frontier_grows_alone(n: int) -> None:
    """The ingester grows a copy over an append, and keeps it only once it committed."""
    tree = Frontier()
    for leaf in LEAVES[:n]:
        tree.append(leaf)
    grown = tree.copy()
    for leaf in LEAVES[n : n + 7]:
        grown.append(leaf)
    assert (tree.size, tree.root()) == (n, root(LEAVES[:n]))
    assert (grown.size, grown.root()) == (n + 7, root(LEAVES[: n + 7]))


@pytest.mark.parametrize("n", SIZES)
def test_proofs_equal_the_recursive_definitions(n: int) -> None:
    tree = LEAVES[:n]
    for i in range(n):
        assert inclusion_proof(tree, i) == reference_path(i, tree)
    for m in range(1, n):
        assert consistency_proof(tree, m) == reference_subproof(m, tree, True)


def frontier_of(leaves: list[bytes]) -> Frontier:
    tree = Frontier()
    tree.extend(leaves)
    return tree


def test_a_frontiers_consistency_proof_matches_the_published_vector() -> None:
    proof = frontier_of(VECTOR_LEAVES[:6]).consistency_proof(VECTOR_LEAVES[6:])
    assert [node.hex() for node in proof] == PROOF_FROM_6_TO_8


@pytest.mark.parametrize("n", range(71))
def test_a_frontiers_consistency_proofs_equal_those_of_all_the_leaves(n: int) -> None:
    """The cosigner proves from the old tree's frontier and the leaves after it alone:
    the same proof as from every leaf, for every old size."""
    for m in range(n + 1):
        expected = consistency_proof(LEAVES[:n], m)
        assert frontier_of(LEAVES[:m]).consistency_proof(LEAVES[m:n]) == expected, (m, n)


@pytest.mark.parametrize("n", range(1, 71))
def test_every_proof_of_a_tree_at_once_equals_the_recursive_definition(n: int) -> None:
    tree = LEAVES[:n]
    assert inclusion_proofs(tree, range(n)) == [reference_path(i, tree) for i in range(n)]


@pytest.mark.parametrize("index", [-1, 5])
def test_proofs_of_a_leaf_outside_the_tree_raise(index: int) -> None:
    with pytest.raises(IndexError):
        inclusion_proofs(LEAVES[:5], [0, index])


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_every_inclusion_proof_verifies(n: int) -> None:
    tree_root = root(LEAVES[:n])
    for i, proof in proven_leaves(n):
        assert verify_inclusion(LEAVES[i], i, n, proof, tree_root)


@pytest.mark.parametrize("n", SIZES)
def test_every_consistency_proof_verifies(n: int) -> None:
    new_root = root(LEAVES[:n])
    for m in range(1, n + 1):
        proof = consistency_proof(LEAVES[:n], m)
        assert verify_consistency(m, n, root(LEAVES[:m]), new_root, proof)


def test_consistency_proof_is_empty_for_the_same_or_the_empty_tree() -> None:
    assert consistency_proof(LEAVES[:5], 5) == []
    assert consistency_proof(LEAVES[:5], 0) == []
    assert consistency_proof([], 0) == []


@pytest.mark.parametrize("index", [-1, 5, 6])
def test_inclusion_proof_of_a_leaf_outside_the_tree_raises(index: int) -> None:
    with pytest.raises(IndexError):
        inclusion_proof(LEAVES[:5], index)


@pytest.mark.parametrize("old_size", [-1, 6])
def test_consistency_proof_from_a_size_outside_the_tree_raises(old_size: int) -> None:
    with pytest.raises(ValueError, match="old size"):
        consistency_proof(LEAVES[:5], old_size)


@settings(max_examples=40, database=None)
@given(n=st.integers(1, 300), data=st.data())
def test_random_proofs_verify_and_any_flipped_bit_breaks_them(n: int, data: st.DataObject) -> None:
    tree = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree_root = root(tree)
    i = data.draw(st.integers(0, n - 1))
    path = inclusion_proof(tree, i)
    assert verify_inclusion(tree[i], i, n, path, tree_root)
    if path:
        node, bit = data.draw(st.integers(0, len(path) - 1)), data.draw(st.integers(0, 255))
        forged = [*path[:node], flip(path[node], bit), *path[node + 1 :]]
        assert not verify_inclusion(tree[i], i, n, forged, tree_root)
    m = data.draw(st.integers(1, n))
    proof = consistency_proof(tree, m)
    assert verify_consistency(m, n, root(tree[:m]), tree_root, proof)


# --- forged inclusion proofs --------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_fails_when_any_proof_node_has_a_flipped_bit(n: int) -> None:
    tree_root = root(LEAVES[:n])
    for i, proof in proven_leaves(n):
        for forged in bit_flips(proof):
            assert not verify_inclusion(LEAVES[i], i, n, forged, tree_root)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_fails_with_a_node_dropped_or_added(n: int) -> None:
    tree_root = root(LEAVES[:n])
    for i, proof in proven_leaves(n):
        for k in range(len(proof)):
            assert not verify_inclusion(LEAVES[i], i, n, proof[:k] + proof[k + 1 :], tree_root)
        for k in range(len(proof) + 1):
            for extra in (LEAVES[100], tree_root, LEAVES[i]):
                longer = [*proof[:k], extra, *proof[k:]]
                assert not verify_inclusion(LEAVES[i], i, n, longer, tree_root)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_fails_with_a_wrong_index_leaf_or_root(n: int) -> None:
    tree_root = root(LEAVES[:n])
    for i, proof in proven_leaves(n):
        for other in [-1, *range(n), n, n + 1]:
            if other != i:
                assert not verify_inclusion(LEAVES[i], other, n, proof, tree_root)
        assert not verify_inclusion(LEAVES[100], i, n, proof, tree_root)
        assert not verify_inclusion(flip(LEAVES[i], 7), i, n, proof, tree_root)
        assert not verify_inclusion(LEAVES[i], i, n, proof, flip(tree_root, 200))
        assert not verify_inclusion(LEAVES[i], i, n, proof, root(LEAVES[: n + 1]))


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_fails_for_a_size_whose_path_has_another_length(n: int) -> None:
    tree_root = root(LEAVES[:n])
    for i, proof in proven_leaves(n):
        for size in range(0, 41):
            if size <= i or len(inclusion_proof(LEAVES[:size], i)) != len(proof):
                assert not verify_inclusion(LEAVES[i], i, size, proof, tree_root)


def test_a_size_with_the_same_path_shape_is_bound_only_by_the_root() -> None:
    # RFC 9162 binds the size through the root: the size-8 path of leaf 0 has the shape
    # of a size-7 path, so (size, root) must be taken together from a signed tree head.
    proof = inclusion_proof(LEAVES[:8], 0)
    assert verify_inclusion(LEAVES[0], 0, 7, proof, root(LEAVES[:8]))
    assert not verify_inclusion(LEAVES[0], 0, 7, proof, root(LEAVES[:7]))


MALFORMED_INCLUSION: list[tuple[str, dict[str, Any]]] = [
    ("size 0", {"size": 0}),
    ("negative size", {"size": -4}),
    ("negative index", {"index": -1}),
    ("index equal to size", {"index": 4}),
    ("boolean index", {"index": True}),
    ("string size", {"size": "4"}),
    ("short leaf", {"leaf": b"\x00" * 31}),
    ("long root", {"root": b"\x00" * 33}),
    ("text leaf", {"leaf": "00" * 32}),
    ("proof node of the wrong length", {"proof": [b"\x01"]}),
    ("proof node that is not bytes", {"proof": [None]}),
    ("proof that is not a sequence", {"proof": 7}),
]


@pytest.mark.parametrize(
    "change", [case[1] for case in MALFORMED_INCLUSION], ids=[c[0] for c in MALFORMED_INCLUSION]
)
def test_inclusion_returns_false_without_raising_on_malformed_input(change: dict[str, Any]) -> None:
    tree = LEAVES[:4]
    arguments: dict[str, Any] = {
        "leaf": tree[1],
        "index": 1,
        "size": 4,
        "proof": inclusion_proof(tree, 1),
        "root": root(tree),
    }
    assert verify_inclusion(**arguments)
    assert verify_inclusion(**{**arguments, **change}) is False


def test_hashes_that_are_not_32_bytes_are_refused_even_when_they_agree() -> None:
    assert not verify_inclusion(b"x", 0, 1, [], b"x")
    assert not verify_inclusion(b"x", 0, 2, [b"y"], node_hash(b"x", b"y"))
    assert not verify_consistency(3, 3, b"r", b"r", [])


def test_inclusion_of_the_only_leaf_needs_an_empty_proof() -> None:
    assert verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    assert not verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], node_hash(LEAVES[0], LEAVES[1]))
    assert not verify_inclusion(EMPTY_ROOT, 0, 0, [], EMPTY_ROOT)


# --- forged consistency proofs ------------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
def test_consistency_fails_when_any_proof_node_has_a_flipped_bit(n: int) -> None:
    new = root(LEAVES[:n])
    for m in range(1, n):
        old = root(LEAVES[:m])
        for forged in bit_flips(consistency_proof(LEAVES[:n], m)):
            assert not verify_consistency(m, n, old, new, forged)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_fails_with_a_node_dropped_or_added(n: int) -> None:
    new = root(LEAVES[:n])
    for m in range(1, n):
        old = root(LEAVES[:m])
        proof = consistency_proof(LEAVES[:n], m)
        for k in range(len(proof)):
            assert not verify_consistency(m, n, old, new, proof[:k] + proof[k + 1 :])
        for k in range(len(proof) + 1):
            for extra in (LEAVES[100], old, new):
                assert not verify_consistency(m, n, old, new, [*proof[:k], extra, *proof[k:]])


@pytest.mark.parametrize("n", SIZES)
def test_consistency_fails_with_wrong_or_swapped_roots(n: int) -> None:
    new = root(LEAVES[:n])
    for m in range(1, n):
        old = root(LEAVES[:m])
        proof = consistency_proof(LEAVES[:n], m)
        assert not verify_consistency(m, n, new, old, proof)
        assert not verify_consistency(m, n, flip(old, 3), new, proof)
        assert not verify_consistency(m, n, old, flip(new, 250), proof)
        assert not verify_consistency(m, n, root(LEAVES[1 : m + 1]), new, proof)
        assert not verify_consistency(m, n, old, root(LEAVES[: n + 1]), proof)
        assert not verify_consistency(n, m, new, old, proof)


CONSISTENCY_LENGTHS = {
    (m, n): len(consistency_proof(LEAVES[:n], m)) for n in range(25) for m in range(n + 1)
}


@pytest.mark.parametrize("n", SIZES)
def test_consistency_fails_for_sizes_whose_proof_has_another_length(n: int) -> None:
    new = root(LEAVES[:n])
    for m in range(1, n):
        old, proof = root(LEAVES[:m]), consistency_proof(LEAVES[:n], m)
        for old_size, new_size in [(a, b) for a in range(25) for b in range(25)]:
            if CONSISTENCY_LENGTHS.get((old_size, new_size), -1) != len(proof) or old_size == 0:
                assert not verify_consistency(old_size, new_size, old, new, proof)


def test_equal_sizes_need_equal_roots_and_an_empty_proof() -> None:
    tree_root = root(LEAVES[:6])
    assert verify_consistency(6, 6, tree_root, tree_root, [])
    assert not verify_consistency(6, 6, tree_root, root(LEAVES[:5]), [])
    assert not verify_consistency(6, 6, tree_root, tree_root, [tree_root])


def test_the_empty_old_tree_is_never_verified() -> None:
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root(LEAVES[:5]), [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root(LEAVES[:5]), [EMPTY_ROOT])
    assert not verify_consistency(3, 0, root(LEAVES[:3]), EMPTY_ROOT, [])


MALFORMED_CONSISTENCY: list[tuple[str, dict[str, Any]]] = [
    ("old size above new size", {"old_size": 9}),
    ("negative old size", {"old_size": -3}),
    ("negative new size", {"new_size": -8}),
    ("new size 0", {"new_size": 0}),
    ("boolean old size", {"old_size": True}),
    ("float new size", {"new_size": 8.0}),
    ("short old root", {"old_root": b"\x00" * 31}),
    ("long new root", {"new_root": b"\x00" * 33}),
    ("text new root", {"new_root": "ab" * 32}),
    ("empty proof", {"proof": []}),
    ("proof node of the wrong length", {"proof": [b"\x01" * 16]}),
    ("proof node that is not bytes", {"proof": [1, 2, 3]}),
    ("proof that is not a sequence", {"proof": None}),
]


@pytest.mark.parametrize(
    "change",
    [case[1] for case in MALFORMED_CONSISTENCY],
    ids=[case[0] for case in MALFORMED_CONSISTENCY],
)
def test_consistency_returns_false_without_raising_on_malformed_input(
    change: dict[str, Any],
) -> None:
    arguments: dict[str, Any] = {
        "old_size": 6,
        "new_size": 8,
        "old_root": root(LEAVES[:6]),
        "new_root": root(LEAVES[:8]),
        "proof": consistency_proof(LEAVES[:8], 6),
    }
    assert verify_consistency(**arguments)
    assert verify_consistency(**{**arguments, **change}) is False


# --- the frontier -------------------------------------------------------------------------


def test_frontier_root_equals_root_after_every_append_up_to_100() -> None:
    frontier = Frontier()
    assert (frontier.size, frontier.root()) == (0, EMPTY_ROOT)
    for n in range(1, 101):
        frontier.append(LEAVES[n - 1])
        assert (frontier.size, frontier.root()) == (n, root(LEAVES[:n]))


def test_frontier_of_100000_leaves_equals_root() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.size == 100_000
    assert frontier.root() == root(leaves)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=70), max_size=8))
def test_frontier_extended_in_any_chunks_equals_root(chunks: list[int]) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(sum(chunks))]
    frontier, done = Frontier(), 0
    for chunk in chunks:
        frontier.extend(leaves[done : done + chunk])
        done += chunk
        assert (frontier.size, frontier.root()) == (done, root(leaves[:done]))


def test_frontier_extended_after_appends_equals_appended() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(10_000)]
    appended, extended = Frontier(), Frontier()
    for leaf in leaves[:37]:
        appended.append(leaf)
        extended.append(leaf)
    for leaf in leaves[37:]:
        appended.append(leaf)
    extended.extend(leaves[37:])
    assert (extended.size, extended.root()) == (appended.size, appended.root())


@given(st.binary(max_size=64), st.binary(max_size=300))
def test_a_leaf_hasher_fed_the_rest_hashes_the_whole_leaf(prefix: bytes, rest: bytes) -> None:
    hasher = leaf_hasher(prefix).copy()
    hasher.update(rest)
    assert hasher.digest() == leaf_hash(prefix + rest)
