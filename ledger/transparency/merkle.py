"""The Merkle tree of RFC 9162 §2.1 (RFC 6962 hashing), as pure functions.

Leaf hash = SHA-256(0x00 ‖ leaf bytes); node hash = SHA-256(0x01 ‖ left ‖ right); a tree
of n leaves splits at the largest power of two below n.

Storage is the caller's: a tree is kept as its *perfect subtrees*, the node
``(level, index)`` being the hash of leaves ``[index·2^level, (index+1)·2^level)``. Every
root and every proof, for any tree size, is a fold of O(log n) such nodes, so this module
answers "which nodes?" (``*_nodes``) and "fold them" (``*_from``), and the store does one
read in between. ``Builder`` extends a tree leaf by leaf from its right edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

HASH_SIZE = 32


class ProofError(ValueError):
    """A proof, root or size that does not verify; the message says which."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class Node(NamedTuple):
    """A perfect subtree: leaves ``[index << level, (index + 1) << level)``."""

    level: int
    index: int  # type: ignore[assignment]  # shadows tuple.index, as RFC 9162 names it


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[Node]:
    """The perfect subtrees whose hashes fold into MTH(D[lo:hi]), left to right.

    ``lo`` is aligned as in every range of the RFC's recursion: a multiple of the
    largest power of two not above ``hi - lo``.
    """
    nodes = []
    while lo < hi:
        size = 1 << ((hi - lo).bit_length() - 1)
        nodes.append(Node(size.bit_length() - 1, lo // size))
        lo += size
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its perfect subtrees' hashes (largest first): right to left."""
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


# --- which ranges a proof is made of (RFC 9162 §2.1.3.1 and §2.1.4.1) ---------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[0:size]) as leaf ranges, leaf-level sibling first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """PROOF(old, D[0:new]) as leaf ranges, in the RFC's order; empty when old == new."""
    if not 0 < old <= new:
        raise ProofError(
            f"no consistency proof from size {old} to size {new}: need 0 < old <= new"
        )
    path = []
    lo, hi, m, complete = 0, new, old, True
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            path.append((lo + k, hi))
            hi = lo + k
        else:
            path.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        path.append((lo, hi))
    path.reverse()
    return path


def nodes_of(ranges: Iterable[tuple[int, int]]) -> list[Node]:
    """Every perfect subtree a list of ranges needs, each once."""
    return list(dict.fromkeys(n for lo, hi in ranges for n in range_nodes(lo, hi)))


def hashes_from(
    ranges: Iterable[tuple[int, int]], nodes: Mapping[Node, bytes]
) -> list[bytes]:
    """The hash of each range, from the stored nodes ``nodes_of(ranges)`` returned."""
    return [fold([nodes[n] for n in range_nodes(lo, hi)]) for lo, hi in ranges]


def root_from(size: int, nodes: Mapping[Node, bytes]) -> bytes:
    return EMPTY_ROOT if size == 0 else hashes_from([(0, size)], nodes)[0]


def prove_inclusion(
    index: int, size: int, get: Callable[[list[Node]], Mapping[Node, bytes]]
):
    """An inclusion proof, reading the nodes it needs with one call of ``get``."""
    ranges = inclusion_ranges(index, size)
    return hashes_from(ranges, get(nodes_of(ranges)))


def prove_consistency(
    old: int, new: int, get: Callable[[list[Node]], Mapping[Node, bytes]]
):
    ranges = consistency_ranges(old, new)
    return hashes_from(ranges, get(nodes_of(ranges)))


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------------


def root_from_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index``; ProofError if
    malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check_hash(p)
        if sn == 0:
            raise ProofError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    _check_hash(root, "the root")
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(
            f"leaf {index} is not included in the tree of size {size} with that root"
        )


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless ``proof`` shows the tree of size ``old`` is a prefix of
    ``new``."""
    if not 0 < old <= new:
        raise ProofError(
            f"no consistency between size {old} and size {new}: need 0 < old <= new"
        )
    if old == new:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old}")
        return
    _check_hash(old_root, f"the root of size {old}")
    _check_hash(new_root, f"the root of size {new}")
    if not proof:
        raise ProofError("the consistency proof is empty")
    for p in proof:
        _check_hash(p)
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"the proof does not lead to the root of size {old}")
    if sr != new_root:
        raise ProofError(f"the proof does not lead to the root of size {new}")


def _check_hash(h: bytes, what: str = "a proof hash") -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} has {len(h)} bytes; SHA-256 hashes have {HASH_SIZE}")


# --- growing a tree -----------------------------------------------------------------------


def frontier_nodes(size: int) -> list[Node]:
    """The perfect subtrees on the right edge of a tree of ``size`` (largest first)."""
    return range_nodes(0, size)


class Builder:
    """Extends a tree from its right edge: O(1) hashes per leaf, amortized.

    Start from an empty tree, or from a stored one's ``frontier_nodes(size)`` hashes.
    ``add`` returns the nodes it completed (the leaf first), to be stored.
    """

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()):
        expected = len(frontier_nodes(size))
        if len(frontier) != expected:
            raise ValueError(f"a tree of size {size} has {expected} frontier nodes")
        self.size = size
        self._stack = list(frontier)  # the right edge, largest subtree first

    def add(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        completed = [(0, index, leaf)]
        h, level = leaf, 0
        while index & 1:
            h = node_hash(self._stack.pop(), h)
            index >>= 1
            level += 1
            completed.append((level, index, h))
        self._stack.append(h)
        self.size += 1
        return completed

    def add_all(self, leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """``add`` of each leaf hash in turn, in one loop: the nodes completed, in the
        order ``add`` returns them."""
        rows: list[tuple[int, int, bytes]] = []
        completed = rows.append
        stack = self._stack
        push, pop = stack.append, stack.pop
        node = node_hash  # looked up once (a test counts the hashes through it)
        index = self.size
        for h in leaves:
            completed((0, index, h))
            at, level = index, 0
            while at & 1:
                h = node(pop(), h)
                at >>= 1
                level += 1
                completed((level, at, h))
            push(h)
            index += 1
        self.size = index
        return rows

    def root(self) -> bytes:
        return fold(self._stack) if self._stack else EMPTY_ROOT
