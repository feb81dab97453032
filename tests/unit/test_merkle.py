"""The Merkle tree of RFC 9162 §2.1 (RFC 6962 hashing): proofs, roots and the Builder.

Three independent references keep ``ledger.merkle`` honest:

- the transparency-dev/merkle test probes (valid and mutated proofs, byte for byte);
- the RFC's own recursive definition of MTH, written out naively below;
- pymerkle, another implementation with RFC 6962 hashing.

Pure functions only: no database, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from arms_ledger.ledger.transparency.merkle import (
    EMPTY_ROOT,
    Builder,
    Node,
    ProofError,
    consistency_ranges,
    fold,
    frontier_nodes,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_of,
    prove_consistency,
    prove_inclusion,
    range_nodes,
    root_from,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

# Unmodified copies of transparency-dev/merkle's testdata (Apache 2.0; README and LICENSE
# beside them), kept in the repository so that CI always runs them.
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "transparency-dev-merkle"

# The RFC 6962 test tree: the leaves behind every transparency-dev probe.
RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

# Its roots for sizes 1..8, as published with the certificate-transparency test data.
RFC6962_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


# --- references and helpers ---------------------------------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 defines it: the naive recursion."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


class Tree:
    """A tree kept the way a store keeps it: every node ``Builder.add`` completed."""

    def __init__(self, leaves: list[bytes]):
        self.leaves = leaves
        self.nodes: dict[Node, bytes] = {}
        self.roots = [EMPTY_ROOT]  # roots[n]: the root of the first n leaves
        self.added: list[list[tuple[int, int, bytes]]] = []  # what each add returned
        builder = Builder()
        for leaf in leaves:
            completed = builder.add(leaf_hash(leaf))
            self.added.append(completed)
            for level, index, h in completed:
                self.nodes[Node(level, index)] = h
            self.roots.append(builder.root())

    def reader(self, size: int, reads: list[list[Node]] | None = None) -> Callable:
        """A ``get`` for proofs up to ``size``: it refuses nodes beyond the first ``size``
        leaves (they may not exist yet in a real store) and records what it was asked."""

        def get(wanted: list[Node]) -> Mapping[Node, bytes]:
            if reads is not None:
                reads.append(list(wanted))
            for node in wanted:
                end = (node.index + 1) << node.level
                assert end <= size, f"{node} is beyond size {size}"
            return {node: self.nodes[node] for node in wanted}

        return get

    def leaf_hash(self, index: int) -> bytes:
        return leaf_hash(self.leaves[index])


# One fixed tree of distinct random leaves serves every size up to 300: the first n leaves
# of a tree are the tree of size n, and their nodes are among the stored ones.
_rng = random.Random(6962)
BIG = Tree([_rng.randbytes(16) for _ in range(300)])
assert len(set(BIG.leaves)) == 300  # distinct leaves: no sibling can stand in for another
RFC_TREE = Tree(RFC6962_LEAVES)


def b64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def flip(h: bytes, bit: int) -> bytes:
    return (int.from_bytes(h, "big") ^ (1 << bit)).to_bytes(len(h), "big")


# --- the transparency-dev/merkle probes ---------------------------------------------------


def probes() -> list:
    return [
        pytest.param(
            path.relative_to(VECTORS).parts[0],
            json.loads(path.read_text()),
            id=path.relative_to(VECTORS).with_suffix("").as_posix(),
        )
        for path in sorted(VECTORS.rglob("*.json"))
    ]


def happy_probes() -> list:
    return [p for p in probes() if p.id.endswith("/happy-path")]


def check_probe(kind: str, probe: dict) -> None:
    """Verify a probe with our verifier; ProofError if it is rejected."""
    proof = [b64(p) for p in probe["proof"] or []]
    if kind == "inclusion":
        index, size = probe["leafIdx"], probe["treeSize"]
        verify_inclusion(index, size, b64(probe["leafHash"]), proof, b64(probe["root"]))
    else:
        verify_consistency(
            probe["size1"], probe["size2"], b64(probe["root1"]), b64(probe["root2"]), proof
        )


def test_all_196_probes_are_present():
    assert len(probes()) == 196


@pytest.mark.parametrize(("kind", "probe"), probes())
def test_probe_is_accepted_exactly_when_valid(kind: str, probe: dict):
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            check_probe(kind, probe)
    else:
        check_probe(kind, probe)


@pytest.mark.parametrize(("kind", "probe"), happy_probes())
def test_we_generate_every_happy_path_proof_exactly(kind: str, probe: dict):
    proof = [b64(p) for p in probe["proof"] or []]
    if kind == "inclusion":
        index, size = probe["leafIdx"], probe["treeSize"]
        assert RFC_TREE.leaf_hash(index) == b64(probe["leafHash"])
        assert prove_inclusion(index, size, RFC_TREE.reader(size)) == proof
        assert RFC_TREE.roots[size] == b64(probe["root"])
    else:
        old, new = probe["size1"], probe["size2"]
        assert prove_consistency(old, new, RFC_TREE.reader(new)) == proof
        assert RFC_TREE.roots[old] == b64(probe["root1"])
        assert RFC_TREE.roots[new] == b64(probe["root2"])


def test_the_rfc6962_test_tree_has_the_published_roots():
    assert RFC_TREE.roots[1:] == RFC6962_ROOTS
    assert [mth(RFC6962_LEAVES[:n]) for n in range(1, 9)] == RFC6962_ROOTS


# --- hashing and the empty tree -----------------------------------------------------------


def test_the_empty_tree_root_is_the_hash_of_nothing():
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert (
        bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        == EMPTY_ROOT
    )
    assert Builder().root() == EMPTY_ROOT
    assert root_from(0, {}) == EMPTY_ROOT
    assert InmemoryTree().get_root(0) == EMPTY_ROOT


def test_leaves_and_nodes_are_domain_separated():
    left, right = b"L" * 32, b"R" * 32
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert leaf_hash(left + right) != node_hash(left, right)


# --- agreement with pymerkle, an independent implementation -------------------------------


def test_roots_agree_with_pymerkle_for_every_size_up_to_300():
    reference = InmemoryTree()  # sha256 with the RFC 6962 0x00 / 0x01 prefixes
    for leaf in BIG.leaves:
        reference.append_entry(leaf)
    assert [reference.get_root(n) for n in range(301)] == BIG.roots


def test_inclusion_proofs_agree_with_pymerkle_up_to_size_64():
    # pymerkle's inclusion path is [the leaf hash] + the RFC 9162 path; its consistency
    # proofs have another form, so only the roots above are compared for those.
    reference = InmemoryTree()
    for leaf in BIG.leaves[:64]:
        reference.append_entry(leaf)
    for size in range(1, 65):
        for index in range(size):
            theirs = reference.prove_inclusion(index + 1, size).path  # 1-based index
            assert theirs[0] == BIG.leaf_hash(index)
            assert prove_inclusion(index, size, BIG.reader(size)) == theirs[1:]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=120))
def test_roots_agree_with_pymerkle_and_the_rfc_recursion(leaves: list[bytes]):
    reference = InmemoryTree()
    builder = Builder()
    for leaf in leaves:
        reference.append_entry(leaf)
        builder.add(leaf_hash(leaf))
    assert builder.root() == reference.get_root() == mth(leaves)


# --- every proof up to size 200 verifies --------------------------------------------------


def test_every_inclusion_proof_up_to_size_200_verifies():
    for size in range(1, 201):
        for index in range(size):
            reads: list[list[Node]] = []
            proof = prove_inclusion(index, size, BIG.reader(size, reads))
            verify_inclusion(index, size, BIG.leaf_hash(index), proof, BIG.roots[size])
            assert reads == [nodes_of(inclusion_ranges(index, size))]  # one read, no more


def test_every_consistency_proof_up_to_size_200_verifies():
    for new in range(1, 201):
        for old in range(1, new + 1):
            reads: list[list[Node]] = []
            proof = prove_consistency(old, new, BIG.reader(new, reads))
            verify_consistency(old, new, BIG.roots[old], BIG.roots[new], proof)
            assert reads == [nodes_of(consistency_ranges(old, new))]


def test_proofs_read_logarithmically_many_nodes():
    for size in range(1, 257):
        bound = 2 * size.bit_length()
        for index in range(size):
            assert len(nodes_of(inclusion_ranges(index, size))) <= bound
        for old in range(1, size + 1):
            assert len(nodes_of(consistency_ranges(old, size))) <= bound


def test_root_from_reads_the_frontier_nodes():
    for size in range(301):
        frontier = {node: BIG.nodes[node] for node in frontier_nodes(size)}
        assert root_from(size, frontier) == BIG.roots[size]


# --- tampered proofs are rejected ---------------------------------------------------------

sizes = st.integers(1, 200)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_inclusion_proof_with_one_bit_flipped_is_rejected(data):
    size = data.draw(sizes, "size")
    index = data.draw(st.integers(0, size - 1), "index")
    proof = prove_inclusion(index, size, BIG.reader(size))
    leaf, root = BIG.leaf_hash(index), BIG.roots[size]
    # The proof hashes, the leaf hash and the root: flip one bit of one of them.
    target = data.draw(st.integers(0, len(proof) + 1), "target")
    bit = data.draw(st.integers(0, 255), "bit")
    if target < len(proof):
        proof[target] = flip(proof[target], bit)
    elif target == len(proof):
        leaf = flip(leaf, bit)
    else:
        root = flip(root, bit)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_inclusion_proof_for_another_index_or_size_is_rejected(data):
    size = data.draw(sizes, "size")
    index = data.draw(st.integers(0, size - 1), "index")
    proof = prove_inclusion(index, size, BIG.reader(size))
    leaf = BIG.leaf_hash(index)
    other_index = data.draw(st.integers(0, 300).filter(lambda i: i != index), "other index")
    other_size = data.draw(st.integers(1, 300).filter(lambda s: s != size), "other size")
    with pytest.raises(ProofError):
        verify_inclusion(other_index, size, leaf, proof, BIG.roots[size])
    # A size is only ever claimed together with its own root (a checkpoint binds them).
    with pytest.raises(ProofError):
        verify_inclusion(index, other_size, leaf, proof, BIG.roots[other_size])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_consistency_proof_with_one_bit_flipped_is_rejected(data):
    new = data.draw(st.integers(2, 200), "new")
    old = data.draw(st.integers(1, new - 1), "old")
    proof = prove_consistency(old, new, BIG.reader(new))
    old_root, new_root = BIG.roots[old], BIG.roots[new]
    target = data.draw(st.integers(0, len(proof) + 1), "target")
    bit = data.draw(st.integers(0, 255), "bit")
    if target < len(proof):
        proof[target] = flip(proof[target], bit)
    elif target == len(proof):
        old_root = flip(old_root, bit)
    else:
        new_root = flip(new_root, bit)
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_consistency_proof_for_other_sizes_is_rejected(data):
    new = data.draw(st.integers(2, 200), "new")
    old = data.draw(st.integers(1, new - 1), "old")
    proof = prove_consistency(old, new, BIG.reader(new))
    other_old = data.draw(st.integers(1, new).filter(lambda s: s != old), "other old")
    other_new = data.draw(st.integers(old, 300).filter(lambda s: s != new), "other new")
    with pytest.raises(ProofError):
        verify_consistency(other_old, new, BIG.roots[other_old], BIG.roots[new], proof)
    with pytest.raises(ProofError):
        verify_consistency(old, other_new, BIG.roots[old], BIG.roots[other_new], proof)


def test_no_small_proof_verifies_for_any_other_index_size_or_old_size():
    # Exhaustive up to size 16, against the root of whatever size is claimed.
    for size in range(1, 17):
        for index in range(size):
            proof = prove_inclusion(index, size, BIG.reader(size))
            for other_size in range(1, 20):
                for other_index in range(other_size):
                    if (other_index, other_size) != (index, size):
                        with pytest.raises(ProofError):
                            verify_inclusion(
                                other_index,
                                other_size,
                                BIG.leaf_hash(index),
                                proof,
                                BIG.roots[other_size],
                            )
        for old in range(1, size):
            proof = prove_consistency(old, size, BIG.reader(size))
            for other_new in range(1, 20):
                for other_old in range(1, other_new + 1):
                    if (other_old, other_new) != (old, size):
                        with pytest.raises(ProofError):
                            verify_consistency(
                                other_old,
                                other_new,
                                BIG.roots[other_old],
                                BIG.roots[other_new],
                                proof,
                            )


def test_proofs_of_the_wrong_length_are_rejected():
    proof = prove_inclusion(5, 8, BIG.reader(8))
    for bad in [proof[:-1], [*proof, proof[0]], [b"\x00" * 31, *proof[1:]]]:
        with pytest.raises(ProofError):
            verify_inclusion(5, 8, BIG.leaf_hash(5), bad, BIG.roots[8])
    proof = prove_consistency(3, 7, BIG.reader(7))
    for bad in [[], proof[:-1], [*proof, proof[0]], [*proof[:1], b"\x00" * 33]]:
        with pytest.raises(ProofError):
            verify_consistency(3, 7, BIG.roots[3], BIG.roots[7], bad)


def test_equal_sizes_need_an_empty_proof_and_equal_roots():
    verify_consistency(5, 5, BIG.roots[5], BIG.roots[5], [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, BIG.roots[5], BIG.roots[5], [BIG.roots[5]])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(5, 5, BIG.roots[5], BIG.roots[6], [])


# --- the Builder --------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=8), max_size=150)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_a_builder_resumed_from_the_frontier_continues_exactly(leaves: list[bytes], data):
    scratch = Tree(leaves)
    k = data.draw(st.integers(0, len(leaves)), "stored size")
    resumed = Builder(k, [scratch.nodes[node] for node in frontier_nodes(k)])
    assert resumed.root() == scratch.roots[k]
    for i in range(k, len(leaves)):
        assert resumed.add(leaf_hash(leaves[i])) == scratch.added[i]
        assert resumed.root() == scratch.roots[i + 1]
    assert resumed.size == len(leaves)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_add_all_is_add_of_each_leaf_in_turn(leaves: list[bytes], data):
    scratch = Tree(leaves)
    k = data.draw(st.integers(0, len(leaves)), "stored size")
    cut = data.draw(st.integers(k, len(leaves)), "first run's end")
    resumed = Builder(k, [scratch.nodes[node] for node in frontier_nodes(k)])
    hashes = [leaf_hash(leaf) for leaf in leaves]
    first = resumed.add_all(hashes[k:cut])
    assert first == [row for i in range(k, cut) for row in scratch.added[i]]
    assert resumed.size == cut and resumed.root() == scratch.roots[cut]
    second = resumed.add_all(iter(hashes[cut:]))
    assert second == [row for i in range(cut, len(leaves)) for row in scratch.added[i]]
    assert resumed.size == len(leaves) and resumed.root() == scratch.roots[len(leaves)]


@settings(max_examples=150, deadline=None)
@given(leaf_lists)
def test_the_builder_stores_exactly_the_perfect_subtrees(leaves: list[bytes]):
    tree = Tree(leaves)
    n = len(leaves)
    perfect = {
        Node(level, index) for level in range(n.bit_length()) for index in range(n >> level)
    }
    assert set(tree.nodes) == perfect
    assert sum(len(completed) for completed in tree.added) == len(perfect)  # each once
    for i, completed in enumerate(tree.added):
        assert completed[0] == (0, i, leaf_hash(leaves[i]))  # the leaf first, then upward
        assert [level for level, _, _ in completed] == list(range(len(completed)))
        for level, index, h in completed:
            assert h == mth(leaves[index << level : (index + 1) << level])
    for size in range(n + 1):
        assert tree.roots[size] == mth(leaves[:size])


def test_a_stored_node_is_the_fold_of_its_halves():
    for (level, index), h in BIG.nodes.items():
        if level:
            left = BIG.nodes[Node(level - 1, 2 * index)]
            right = BIG.nodes[Node(level - 1, 2 * index + 1)]
            assert h == fold([left, right]) == node_hash(left, right)


def test_range_nodes_are_the_perfect_subtrees_of_a_range():
    # The tree of size 13 = 8 + 4 + 1; a range starting at 8 of width 5 = 4 + 1.
    assert range_nodes(0, 13) == [Node(3, 0), Node(2, 2), Node(0, 12)]
    assert range_nodes(8, 13) == [Node(2, 2), Node(0, 12)]
    assert frontier_nodes(13) == range_nodes(0, 13)
    assert frontier_nodes(0) == []


def test_a_builder_needs_the_whole_frontier():
    with pytest.raises(ValueError, match="frontier"):
        Builder(13, [EMPTY_ROOT, EMPTY_ROOT])
    with pytest.raises(ValueError, match="frontier"):
        Builder(0, [EMPTY_ROOT])


# --- which ranges, and their arguments ----------------------------------------------------


def test_ranges_follow_the_rfc_examples():
    # RFC 9162 §2.1.5: the tree of 7 leaves d0..d6.
    assert inclusion_ranges(0, 7) == [(1, 2), (2, 4), (4, 7)]  # [b, h, l]
    assert inclusion_ranges(3, 7) == [(2, 3), (0, 2), (4, 7)]  # [c, g, l]
    assert inclusion_ranges(4, 7) == [(5, 6), (6, 7), (0, 4)]  # [f, j, k]
    assert inclusion_ranges(6, 7) == [(4, 6), (0, 4)]  # [i, k]
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]  # [c, d, g, l]
    assert consistency_ranges(4, 7) == [(4, 7)]  # [l]
    assert consistency_ranges(6, 7) == [(4, 6), (6, 7), (0, 4)]  # [i, j, k]
    assert consistency_ranges(7, 7) == []


@pytest.mark.parametrize(("index", "size"), [(0, 0), (-1, 5), (5, 5), (6, 5), (0, -1)])
def test_inclusion_ranges_reject_an_index_outside_the_tree(index: int, size: int):
    with pytest.raises(ProofError):
        inclusion_ranges(index, size)
    with pytest.raises(ProofError):
        root_from_inclusion(index, size, EMPTY_ROOT, [])
    with pytest.raises(ProofError):
        verify_inclusion(index, size, EMPTY_ROOT, [], EMPTY_ROOT)


@pytest.mark.parametrize(("old", "new"), [(0, 0), (0, 5), (-1, 5), (6, 5), (1, 0)])
def test_consistency_ranges_reject_sizes_out_of_order(old: int, new: int):
    with pytest.raises(ProofError):
        consistency_ranges(old, new)
    with pytest.raises(ProofError):
        verify_consistency(old, new, EMPTY_ROOT, EMPTY_ROOT, [])


def test_hashes_of_the_wrong_length_are_rejected():
    proof = prove_inclusion(2, 3, BIG.reader(3))
    with pytest.raises(ProofError, match="leaf hash"):
        verify_inclusion(2, 3, BIG.leaf_hash(2)[:31], proof, BIG.roots[3])
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(2, 3, BIG.leaf_hash(2), proof, BIG.roots[3] + b"\x00")
