"""RFC 6962 (Certificate Transparency) Merkle tree hashing, in pure Python.

Definitions follow RFC 6962 section 2.1: a leaf hash is SHA-256(0x00 || data), an
interior node hash is SHA-256(0x01 || left || right), the hash of the empty tree is
SHA-256(""), and a tree of n > 1 leaves splits at k, the largest power of two
smaller than n (section 2.1, MTH). Audit paths are section 2.1.1 (PATH) and
consistency proofs section 2.1.2 (PROOF / SUBPROOF). RFC 6962 gives no verification
algorithms; ``verify_inclusion`` and ``verify_consistency`` follow RFC 9162 (CT v2)
sections 2.1.3.2 and 2.1.4.2, which verify the same proofs.

``root``, ``inclusion_proof``, ``consistency_proof`` and ``Frontier`` work on *leaf
hashes* (the output of ``leaf_hash``), never on raw leaf data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "leaf_hasher",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash here (SHA-256)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

_NODE_HASHER = hashlib.sha256(_NODE_PREFIX)

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256(""), the root of the empty tree (RFC 6962 section 2.1)."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 || d0): the hash of one leaf (RFC 6962 section 2.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def leaf_hasher(prefix: bytes) -> hashlib._Hash:
    """A SHA-256 already fed 0x00 || ``prefix``: a ``copy()`` of it, fed the rest of a
    leaf's data, digests to ``leaf_hash(prefix + rest)``. For leaves that all begin alike
    (a ledger's entries): the prefix is hashed once, and no leaf data is concatenated."""
    return hashlib.sha256(_LEAF_PREFIX + prefix)


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node (RFC 6962 section 2.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than ``n`` (n > 1), per RFC 6962 section 2.1."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves (RFC 6962 section 2.1); EMPTY_ROOT for none.

    Computed level by level, pairing adjacent nodes and promoting an odd last node
    unchanged. This equals the recursive split at the largest power of two below n:
    the left k leaves always form a perfect subtree, and the odd node at the right
    edge of a level is exactly a right-hand subtree that is not yet paired.
    O(n) hashes, O(n) memory.
    """
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def _parent_level(level: list[bytes]) -> list[bytes]:
    """Hash adjacent pairs of ``level``; an odd last node moves up unchanged. (``node_hash``
    of each pair, from a copy of a SHA-256 already fed 0x01: a copy costs less than a new
    hash object, and this is most of the hashing a root of many leaves takes.)"""
    parents: list[bytes] = []
    append, start = parents.append, _NODE_HASHER.copy
    for i in range(0, len(level) - 1, 2):
        hasher = start()
        hasher.update(level[i] + level[i + 1])
        append(hasher.digest())
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) for m = ``index`` over leaf hashes (RFC 6962 section 2.1.1).

    The audit path lists sibling subtree roots from the leaf up to the root. Raises
    ``IndexError`` unless 0 <= index < len(leaves). O(n) hashes in total.
    """
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf index {index} is outside a tree of {n} leaves")
    path: list[bytes] = []  # collected root-first, reversed at the end
    lo, hi = 0, n
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:  # PATH(m, D[0:k]) : MTH(D[k:n])
            path.append(root(leaves[mid:hi]))
            hi = mid
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            path.append(root(leaves[lo:mid]))
            lo = mid
    path.reverse()
    return path


def inclusion_proofs(leaves: Sequence[bytes], indices: Sequence[int]) -> list[list[bytes]]:
    """PATH(m, D[n]) for every m in ``indices``, equal to ``inclusion_proof`` each, with the
    tree's levels hashed once: O(n) hashes and O(log n) per proof, where one call of
    ``inclusion_proof`` per leaf would take O(n) hashes each (an export of the whole ledger).

    A level pairs adjacent nodes and promotes an odd last one (as ``root``), so a node's
    sibling at each level is its neighbour, and a promoted node has none: its path skips
    that level. Raises ``IndexError`` for an index outside the tree.
    """
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        levels.append(_parent_level(levels[-1]))
    proofs = []
    for index in indices:
        if not 0 <= index < len(leaves):
            raise IndexError(f"leaf index {index} is outside a tree of {len(leaves)} leaves")
        path, node = [], index
        for level in levels[:-1]:
            if node ^ 1 < len(level):
                path.append(level[node ^ 1])
            node >>= 1
        proofs.append(path)
    return proofs


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) for m = ``old_size`` (RFC 6962 2.1.2).

    Empty when old_size is 0 or n. Raises ``ValueError`` unless 0 <= old_size <= n.
    """
    n = len(leaves)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []
    return _subproof(leaves, old_size)


def _subproof(leaves: Sequence[bytes], m: int) -> list[bytes]:
    """SUBPROOF(m, D[n], true) for 0 < m < n, iteratively (RFC 6962 section 2.1.2)."""
    proof: list[bytes] = []  # collected root-first, reversed at the end
    lo, hi, whole_old_tree = 0, len(leaves), True
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            proof.append(root(leaves[mid:hi]))
            hi = mid
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            proof.append(root(leaves[lo:mid]))
            m -= mid - lo
            lo = mid
            whole_old_tree = False
    if not whole_old_tree:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        proof.append(root(leaves[lo:hi]))
    proof.reverse()
    return proof


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _are_hashes(values: object) -> bool:
    return isinstance(values, Sequence) and all(_is_hash(value) for value in values)


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree (size, root).

    The algorithm of RFC 9162 section 2.1.3.2, which checks RFC 6962 section 2.1.1
    audit paths. Returns False, never raises, on any malformed input (sizes that are
    not non-negative ints, index >= size, hashes that are not 32 bytes, wrong length).

    As in RFC 9162, ``size`` is bound only through ``root``: a proof can also verify
    for another size whose path has the same shape, so take (size, root) together
    from one signed tree head.
    """
    if not (_is_size(index) and _is_size(size) and index < size):
        return False
    if not (_is_hash(leaf) and _is_hash(root) and _are_hashes(proof)):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree (old_size, old_root) is a prefix of the new one.

    For 0 < old_size < new_size this is the algorithm of RFC 9162 section 2.1.4.2,
    which checks RFC 6962 section 2.1.2 proofs. Equal sizes need an empty proof and
    equal roots. An old size of 0 proves nothing and returns False, as does any
    malformed input (old_size > new_size, hashes that are not 32 bytes, bad lengths);
    this function never raises.
    """
    if not (_is_size(old_size) and _is_size(new_size) and 0 < old_size <= new_size):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _are_hashes(proof)):
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    return _verify_growth(old_size, new_size, old_root, new_root, list(proof))


def _verify_growth(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2 steps 1 to 7, for 0 < old_size < new_size."""
    if not path:
        return False
    if old_size & (old_size - 1) == 0:  # the old tree is a perfect subtree: its root
        path.insert(0, old_root)  # is the first node of the path
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """An append-only Merkle tree kept as its right frontier (RFC 6962 section 2.1).

    Holds the roots of the perfect subtrees that make up the tree, one per set bit of
    the size, largest (leftmost) first: O(log n) memory and amortised O(1) hashes per
    append. ``root()`` equals ``root(leaves)`` of every leaf hash appended so far.
    """

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[tuple[int, bytes]] = []  # (subtree leaf count, subtree root)

    @property
    def size(self) -> int:
        """Number of leaf hashes appended."""
        return self._size

    def copy(self) -> Frontier:
        """A tree of its own with the same leaves (grown without changing this one)."""
        twin = Frontier()
        twin._size, twin._stack = self._size, list(self._stack)
        return twin

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (the output of ``leaf_hash``) at the right edge."""
        self._push(1, leaf)

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Add ``leaves`` in order, as ``append`` of each would. They go in as the largest
        perfect subtrees the size allows (a subtree of 2^k leaves fits where the size is a
        multiple of 2^k), each hashed level by level: the same hashes as ``append``, with
        less Python per hash (verification of a whole ledger)."""
        done = 0
        while done < len(leaves):
            largest = 1 << ((len(leaves) - done).bit_length() - 1)
            count = min(self._size & -self._size, largest) if self._size else largest
            self._push(count, root(leaves[done : done + count]))
            done += count

    def _push(self, count: int, node: bytes) -> None:
        """Add the root of a perfect subtree of ``count`` leaves, where it fits."""
        self._size += count
        while self._stack and self._stack[-1][0] == count:
            left_count, left = self._stack.pop()
            count, node = left_count + count, node_hash(left, node)
        self._stack.append((count, node))

    def consistency_proof(self, new_leaves: Sequence[bytes]) -> list[bytes]:
        """PROOF(m, D[n]) (RFC 6962 2.1.2) for m = this tree's size and D[n] its leaves
        followed by ``new_leaves``, from this frontier and ``new_leaves`` alone: the
        proof's nodes inside the old tree are the perfect subtrees the frontier keeps (m's
        binary decomposition); the others lie wholly after m. O(n - m + log m) hashes,
        where ``consistency_proof`` of all the leaves takes O(n). The same proof."""
        m, n = self._size, self._size + len(new_leaves)
        if m in (0, n):
            return []
        kept, offset = {}, 0
        for count, node in self._stack:
            kept[offset, count] = node
            offset += count

        def subtree(lo: int, hi: int) -> bytes:  # MTH(D[lo:hi]), wholly old or wholly new
            return kept[lo, hi - lo] if hi <= m else root(new_leaves[lo - m : hi - m])

        # _subproof's descent, with lo + rest == m throughout
        proof: list[bytes] = []
        lo, hi, rest, whole_old_tree = 0, n, m, True
        while rest != hi - lo:
            mid = lo + _split(hi - lo)
            if rest <= mid - lo:
                proof.append(subtree(mid, hi))
                hi = mid
            else:
                proof.append(subtree(lo, mid))
                rest -= mid - lo
                lo, whole_old_tree = mid, False
        if not whole_old_tree:
            proof.append(subtree(lo, hi))
        proof.reverse()
        return proof

    def root(self) -> bytes:
        """MTH of the leaves so far: the subtree roots folded right to left."""
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, node in reversed(self._stack[:-1]):
            acc = node_hash(node, acc)
        return acc
