"""Merkle trees of RFC 9162 (Certificate Transparency v2), §2.1: hashing, inclusion and
consistency proofs, and a compact (frontier) tree for appending. Pure: no I/O, no clock.

- ``leaf_hash(d) = SHA-256(0x00 ‖ d)``, ``node_hash(l, r) = SHA-256(0x01 ‖ l ‖ r)`` (§2.1.1);
  the tree head of no leaves is ``SHA-256()`` (``EMPTY_ROOT``).
- Proofs are generated against callbacks, never a list of all leaves: ``get_leaf_hash(i)``
  gives the hash of leaf ``i`` and the optional ``get_node(level, index)`` the hash of the
  *complete* subtree covering leaves ``[index·2^level, (index+1)·2^level)`` (or ``None`` when
  it is not cached). Every subtree a proof names is complete except at most one (the right
  edge), and that one splits into at most log₂ n complete subtrees; so a store that keeps
  the complete-subtree hashes (which ``CompactTree.append`` hands out as they are finished)
  serves a proof in O(log n) lookups on a log of any size. Without ``get_node`` every hash is
  recomputed from the leaves (O(n) per proof; fine for tests and small trees).
- Verifiers (§2.1.3.2, §2.1.4.2) raise ``ProofError`` on any failure and return ``None``.

Checked against the transparency-dev/merkle vectors (``tests/unit/test_merkle.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

LeafHashLookup = Callable[[int], bytes]
"""Hash of leaf ``i`` (already ``leaf_hash``-ed), 0 ≤ i < size."""
NodeLookup = Callable[[int, int], "bytes | None"]
"""Hash of the complete subtree ``(level, index)`` or ``None`` when the store does not have it."""


class ProofError(ValueError):
    """A proof, size or root that does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d0}) = HASH(0x00 || d0)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: HASH(0x01 || MTH(left) || MTH(right))."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2), RFC 9162 §2.1.1's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a tree whose leaf hashes are given (RFC 9162 §2.1.1)."""
    if not hashes:
        return EMPTY_ROOT
    return _subtree(0, len(hashes), hashes.__getitem__, None)


def root(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of the leaf data ``leaves`` (RFC 9162 §2.1.1)."""
    return root_of_leaf_hashes([leaf_hash(d) for d in leaves])


def _subtree(
    start: int, end: int, get_leaf_hash: LeafHashLookup, get_node: NodeLookup | None
) -> bytes:
    """MTH(D[start:end]) where ``start`` is a multiple of the largest power of two ≤ end - start
    (true of every subtree in RFC 9162's recursion)."""
    n = end - start
    if n == 1:
        return _checked(get_leaf_hash(start), f"leaf {start}")
    if n & (n - 1) == 0 and get_node is not None:
        level = n.bit_length() - 1
        cached = get_node(level, start >> level)
        if cached is not None:
            return _checked(cached, f"node ({level}, {start >> level})")
    k = _split(n)
    return node_hash(
        _subtree(start, start + k, get_leaf_hash, get_node),
        _subtree(start + k, end, get_leaf_hash, get_node),
    )


def _checked(value: bytes, what: str) -> bytes:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")
    return value


def subtree_hash(
    start: int, end: int, get_leaf_hash: LeafHashLookup, get_node: NodeLookup | None = None
) -> bytes:
    """MTH(D[start:end]) for an RFC 9162-aligned range (see ``_subtree``)."""
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    if start & (_pow2_floor(end - start) - 1):
        raise ValueError(f"[{start}, {end}) is not a subtree of the RFC 9162 decomposition")
    return _subtree(start, end, get_leaf_hash, get_node)


def _pow2_floor(n: int) -> int:
    return 1 << (n.bit_length() - 1)


def inclusion_proof(
    index: int, size: int, get_leaf_hash: LeafHashLookup, get_node: NodeLookup | None = None
) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root; each level appends its sibling, so reverse at the end.
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append(_subtree(start + k, end, get_leaf_hash, get_node))
            end = start + k
        else:
            path.append(_subtree(start, start + k, get_leaf_hash, get_node))
            start += k
    path.reverse()
    return path


def consistency_proof(
    size1: int, size2: int, get_leaf_hash: LeafHashLookup, get_node: NodeLookup | None = None
) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1, for 0 < m ≤ n
    (empty when m = n)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from {size1} to {size2} (RFC 9162: 0 < m <= n)")
    path: list[bytes] = []
    start, end, m, whole = 0, size2, size1, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                path.append(_subtree(start, end, get_leaf_hash, get_node))
            break
        k = _split(n)
        if m <= k:
            path.append(_subtree(start + k, end, get_leaf_hash, get_node))
            end = start + k
        else:
            path.append(_subtree(start, start + k, get_leaf_hash, get_node))
            start, m, whole = start + k, m - k, False
    path.reverse()
    return path


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof element {i} is {len(p)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root RFC 9162 §2.1.3.2 computes from ``leaf`` (a leaf hash) and its path."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size``
    whose root is ``expected_root``; raises ``ProofError`` otherwise."""
    if root_from_inclusion_proof(index, size, leaf, proof) != expected_root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: the tree of ``size1`` with ``root1`` is a prefix of the tree of
    ``size2`` with ``root2``; raises ``ProofError`` otherwise.

    Equal sizes need an empty proof and equal roots (the empty tree's root is ``EMPTY_ROOT``).
    ``size1 = 0 < size2`` is refused: RFC 9162 defines proofs for 0 < m < n only, and every tree
    extends the empty one, so there is nothing to check (the vectors reject it too)."""
    if size1 > size2:
        raise ProofError(f"size1 {size1} > size2 {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("the empty tree's root is SHA-256()")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if size1 == 0:
        raise ProofError("no consistency proof from the empty tree (RFC 9162: 0 < m < n)")
    if not proof:
        raise ProofError("empty consistency proof")  # step 1
    _check_hashes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 7
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError("consistency proof does not lead to root1")
    if sr != root2:
        raise ProofError("consistency proof does not lead to root2")


@dataclass(frozen=True, slots=True)
class Node:
    """A complete subtree finished by an append: leaves ``[index·2^level, (index+1)·2^level)``."""

    level: int
    index: int
    hash: bytes


@dataclass(slots=True)
class CompactTree:
    """The frontier of an append-only tree: one hash per set bit of ``size`` (the complete
    subtrees the leaves so far decompose into, largest first), O(log n) memory.

    ``append`` returns the complete subtrees it finished (the leaf itself at level 0, then one
    per merge) so a store can keep them for ``get_node`` and serve O(log n) proofs."""

    size: int = 0
    frontier: list[bytes] = field(default_factory=list)

    @classmethod
    def restore(cls, size: int, frontier: Sequence[bytes]) -> CompactTree:
        """Resume from a stored ``(size, frontier)`` (the frontier has ``size.bit_count()``
        hashes, the largest subtree first)."""
        if size < 0 or len(frontier) != size.bit_count():
            raise ValueError(f"a tree of {size} has {max(size, 0).bit_count()} frontier hashes")
        for i, h in enumerate(frontier):
            _checked(h, f"frontier hash {i}")
        return cls(size, list(frontier))

    def append(self, leaf: bytes) -> list[Node]:
        """Add a leaf hash; returns the complete subtrees this finished, smallest first."""
        _checked(leaf, "leaf hash")
        index = self.size
        finished = [Node(0, index, leaf)]
        h, level = leaf, 0
        while (index >> level) & 1:  # each trailing 1 bit of the old size merges a pair
            h = node_hash(self.frontier.pop(), h)
            level += 1
            finished.append(Node(level, index >> level, h))
        self.frontier.append(h)
        self.size += 1
        return finished

    def append_data(self, data: bytes) -> list[Node]:
        """Add a leaf by its data (hashed with ``leaf_hash``)."""
        return self.append(leaf_hash(data))

    def root(self) -> bytes:
        """MTH of the leaves so far: the frontier folded right to left (RFC 9162 §2.1.1)."""
        if not self.frontier:
            return EMPTY_ROOT
        h = self.frontier[-1]
        for left in reversed(self.frontier[:-1]):
            h = node_hash(left, h)
        return h
