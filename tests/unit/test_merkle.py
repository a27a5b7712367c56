"""RFC 9162 Merkle trees (bidroom/merkle.py): the transparency-dev/merkle vectors in
../shared/merkle-vectors (every case, the failing ones rejected), known hashes, and properties:
generated proofs verify, any change to leaf, index, size, root or path element is refused, the
compact tree's root is the full tree's, and cached subtree lookups give the same proofs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidroom.merkle import (
    EMPTY_ROOT,
    CompactTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_of_leaf_hashes,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _vectors_dir() -> Path:
    """``../shared/merkle-vectors`` beside the repository (``/work/main`` → ``/work/shared``);
    a worktree one level deeper (``/work/wt/<name>``) finds it further up the same way."""
    for base in REPO_ROOT.parents:
        candidate = base / "shared" / "merkle-vectors"
        if candidate.is_dir():
            return candidate
    return REPO_ROOT.parent / "shared" / "merkle-vectors"  # missing: the tests below fail


VECTORS = _vectors_dir()


def _cases(kind: str) -> list[Path]:
    found = sorted((VECTORS / kind).rglob("*.json"))
    # Fail, never skip: a missing copy would make the suite pass without checking anything.
    assert found, f"no {kind} vectors under {VECTORS} (see its README)"
    return found


def _params(kind: str) -> list[Path]:
    """The cases to parametrize with; a missing directory yields one case that fails (not an
    empty, skipped parameter set)."""
    found = sorted((VECTORS / kind).rglob("*.json"))
    return found or [VECTORS / kind / "MISSING.json"]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in value or []]


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _id(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


def test_vectors_are_there() -> None:
    assert len(_cases("inclusion")) >= 80
    assert len(_cases("consistency")) >= 90


@pytest.mark.parametrize("path", _params("inclusion"), ids=_id)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args, _b64(case["root"]))
    else:
        verify_inclusion(*args, _b64(case["root"]))


@pytest.mark.parametrize("path", _params("consistency"), ids=_id)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args, _proof(case["proof"]))
    else:
        verify_consistency(*args, _proof(case["proof"]))


def test_known_hashes() -> None:
    # The README's known answers (transparency-dev/merkle's hasher tests).
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_vector_proofs_are_regenerated() -> None:
    """The happy paths' trees are the 8 leaves of RFC 6962's reference set; our generator
    gives the vectors' proofs and roots for them."""
    leaves = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    hashes = [leaf_hash(d) for d in leaves]
    checked = 0
    for path in _cases("inclusion"):
        case = _load(path)
        if case["wantErr"] or case["treeSize"] > 8 or path.parent.name == "single-entry":
            continue
        size = case["treeSize"]
        assert root_of_leaf_hashes(hashes[:size]) == _b64(case["root"])
        assert inclusion_proof(case["leafIdx"], size, hashes.__getitem__) == _proof(case["proof"])
        checked += 1
    for path in _cases("consistency"):
        case = _load(path)
        if case["wantErr"] or path.parent.name == "additional":
            continue
        got = consistency_proof(case["size1"], case["size2"], hashes.__getitem__)
        assert got == _proof(case["proof"])
        assert root_of_leaf_hashes(hashes[: case["size2"]]) == _b64(case["root2"])
        checked += 1
    assert checked >= 8


def _hashes(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _full_root(hashes: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1's recursion (the oracle)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(_full_root(hashes[:k]), _full_root(hashes[k:]))


@st.composite
def _tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 300))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=200, deadline=None)
@given(_tree_and_index(), st.data())
def test_inclusion_proofs_verify_and_tampering_fails(
    tree: tuple[int, int], data: st.DataObject
) -> None:
    size, index = tree
    hashes = _hashes(size)
    top = _full_root(hashes)
    proof = inclusion_proof(index, size, hashes.__getitem__)
    verify_inclusion(index, size, hashes[index], proof, top)

    other_leaf = leaf_hash(b"not a leaf")
    with pytest.raises(ProofError):
        verify_inclusion(index, size, other_leaf, proof, top)
    other_index = data.draw(st.integers(0, size + 5).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        verify_inclusion(other_index, size, hashes[index], proof, top)
    # Another size, checked against that size's root in the same (longer) log. Against the
    # *same* root a size whose path has the same left/right shape would pass (leaf 0 of 3 and
    # of 4): the tree head binds the size, so a verifier takes size and root from one head.
    longer = _hashes(2 * size + 2)
    other_size = data.draw(st.integers(0, 2 * size + 2).filter(lambda s: s != size))
    with pytest.raises(ProofError):
        verify_inclusion(index, other_size, hashes[index], proof, _full_root(longer[:other_size]))
    with pytest.raises(ProofError):
        verify_inclusion(index, size, hashes[index], proof, leaf_hash(b"other root"))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 8 * 32 - 1))
        changed = list(proof)
        flipped = bytearray(changed[at])
        flipped[bit // 8] ^= 1 << (bit % 8)
        changed[at] = bytes(flipped)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, hashes[index], changed, top)
        with pytest.raises(ProofError):
            verify_inclusion(index, size, hashes[index], proof[:-1], top)
    with pytest.raises(ProofError):
        verify_inclusion(index, size, hashes[index], [*proof, other_leaf], top)


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, 300))
    return draw(st.integers(1, size2)), size2


@settings(max_examples=200, deadline=None)
@given(_two_sizes(), st.data())
def test_consistency_proofs_verify_and_tampering_fails(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    size1, size2 = sizes
    hashes = _hashes(size2)
    root1, root2 = _full_root(hashes[:size1]), _full_root(hashes)
    proof = consistency_proof(size1, size2, hashes.__getitem__)
    verify_consistency(size1, size2, root1, root2, proof)

    wrong = leaf_hash(b"other root")
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, wrong, root2, proof)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, wrong, proof)
    # Other sizes with their own roots in the same log (see the inclusion test on why).
    longer = _hashes(2 * size2 + 2)
    other1 = data.draw(st.integers(0, size2 + 3).filter(lambda s: s != size1))
    with pytest.raises(ProofError):
        verify_consistency(other1, size2, _full_root(longer[:other1]), root2, proof)
    other2 = data.draw(st.integers(0, 2 * size2 + 2).filter(lambda s: s != size2))
    with pytest.raises(ProofError):
        verify_consistency(size1, other2, root1, _full_root(longer[:other2]), proof)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 8 * 32 - 1))
        changed = list(proof)
        flipped = bytearray(changed[at])
        flipped[bit // 8] ^= 1 << (bit % 8)
        changed[at] = bytes(flipped)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, changed)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, root1, root2, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, root2, [*proof, wrong])


def test_compact_tree_root_equals_full_root_for_every_n() -> None:
    tree = CompactTree()
    hashes: list[bytes] = []
    assert tree.root() == EMPTY_ROOT
    for n in range(1, 1100):
        h = leaf_hash(n.to_bytes(4, "big"))
        hashes.append(h)
        tree.append(h)
        assert tree.size == n
        assert len(tree.frontier) == n.bit_count()
        assert tree.root() == _full_root(hashes) == root_of_leaf_hashes(hashes)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=200), st.data())
def test_compact_tree_restores_and_hands_out_complete_subtrees(
    leaves: list[bytes], data: st.DataObject
) -> None:
    """The nodes append returns are exactly the complete subtrees, with the right hashes; a
    store that caches them gives the same proofs from the cache, and a restored frontier
    continues to the same root."""
    tree = CompactTree()
    cache: dict[tuple[int, int], bytes] = {}
    for d in leaves:
        for node in tree.append_data(d):
            assert (node.level, node.index) not in cache
            cache[(node.level, node.index)] = node.hash
    hashes = [leaf_hash(d) for d in leaves]
    assert tree.root() == root(leaves)
    for (level, index), h in cache.items():
        start = index << level
        assert subtree_hash(start, start + (1 << level), hashes.__getitem__) == h
    assert len(cache) == sum(len(hashes) >> lv for lv in range(len(hashes).bit_length()))

    cut = data.draw(st.integers(0, len(leaves)))
    head = CompactTree()
    for h in hashes[:cut]:
        head.append(h)
    resumed = CompactTree.restore(head.size, head.frontier)
    for h in hashes[cut:]:
        resumed.append(h)
    assert resumed.root() == tree.root()

    if not hashes:
        return
    # Served from the cache: only leaves of the last, incomplete subtree's right edge and
    # cached complete subtrees are read, in O(log n) lookups.
    reads: list[str] = []

    def get_leaf(i: int) -> bytes:
        reads.append("leaf")
        return hashes[i]

    def get_node(level: int, index: int) -> bytes | None:
        reads.append("node")
        return cache.get((level, index))

    size = len(hashes)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, get_leaf, get_node)
    assert proof == inclusion_proof(index, size, hashes.__getitem__)
    assert len(reads) <= 2 * size.bit_length() + 2
    verify_inclusion(index, size, hashes[index], proof, tree.root())
    size1 = data.draw(st.integers(1, size))
    reads.clear()
    cproof = consistency_proof(size1, size, get_leaf, get_node)
    assert cproof == consistency_proof(size1, size, hashes.__getitem__)
    assert len(reads) <= 2 * size.bit_length() + 2
    verify_consistency(size1, size, root(leaves[:size1]), tree.root(), cproof)


def test_refusals() -> None:
    hashes = _hashes(5)
    with pytest.raises(ValueError):
        inclusion_proof(5, 5, hashes.__getitem__)
    with pytest.raises(ValueError):
        consistency_proof(0, 5, hashes.__getitem__)
    with pytest.raises(ValueError):
        consistency_proof(6, 5, hashes.__getitem__)
    with pytest.raises(ValueError):
        subtree_hash(1, 3, hashes.__getitem__)  # not aligned
    with pytest.raises(ValueError):
        CompactTree.restore(3, [hashes[0]])
    with pytest.raises(ValueError):
        CompactTree().append(b"short")
    with pytest.raises(ProofError):  # a proof element of the wrong length
        verify_inclusion(0, 2, hashes[0], [hashes[1] + b"\x00"], _full_root(hashes[:2]))
    assert consistency_proof(5, 5, hashes.__getitem__) == []
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
