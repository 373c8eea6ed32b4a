"""Merkle tree hashing, inclusion and consistency proofs over audit leaf hashes (RFC 9162, section 2.1).

Pure functions over leaf hashes: no I/O. Names follow the RFC: MTH (`root`), PATH (`inclusion_proof`),
PROOF/SUBPROOF (`consistency_proof`), and the verification algorithms of 2.1.3.2 and 2.1.4.2, written
step by step so they can be read side by side with the RFC. `TreeBuilder` keeps the state a sealer
needs over a growing log: the roots of the perfect subtrees that make up the tree, O(log n) hashes.

`leaf_hash` is defined here rather than imported from `gateway.audit.writer` so that this module (and
the offline verifier that uses it) does not pull in the database layer; the two are the same function
and a unit test holds them equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Self

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = HASH()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return the leaf hash of an entry: SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Return the largest power of two smaller than n (n >= 2): where the RFC splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """Return MTH(D[start:end]).

    Pairing level by level, and carrying an unpaired last node up unchanged, gives the same tree as
    the RFC's split at the largest power of two; it needs no recursion and hashes each node once.
    """
    level = list(leaf_hashes[start:end])
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = list(map(node_hash, level[0::2], level[1::2]))
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of the leaf hashes (RFC 9162 2.1.1)."""
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path PATH(index, D[n]) for the leaf at index, lowest node first (RFC 9162 2.1.3.1)."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} is outside a tree of size {size}")
    siblings: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append((mid, end))
            end = mid
        else:
            siblings.append((start, mid))
            start = mid
    return [_subtree_root(leaf_hashes, s, e) for s, e in reversed(siblings)]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Return PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1); empty when old_size is 0 or equals new_size."""
    if not 0 <= old_size <= new_size <= len(leaf_hashes):
        raise ValueError(f"need 0 <= old_size ({old_size}) <= new_size ({new_size}) <= {len(leaf_hashes)}")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[start:end], complete), unrolled: m counts the old leaves in [start, end), which
    # always begin at start; `complete` stays true while the old tree is the left edge of the subtree.
    nodes: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            nodes.append((start + k, end))
            end = start + k
        else:
            nodes.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        nodes.append((start, end))
    return [_subtree_root(leaf_hashes, s, e) for s, e in reversed(nodes)]


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Return whether proof shows leaf_hash at index in the tree of tree_size with that root (RFC 9162 2.1.3.2)."""
    if index < 0 or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Return whether proof shows the tree (new_size, new_root) extends (old_size, old_root) (RFC 9162 2.1.4.2).

    The RFC's algorithm covers 0 < old_size < new_size. A tree is consistent with itself (equal sizes
    and roots, empty proof), and the empty tree, whose root is HASH(), is a prefix of every tree
    (empty proof).
    """
    if old_size < 0 or new_size < old_size:
        return False
    if old_size == 0 and old_root != EMPTY_ROOT:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class TreeBuilder:
    """An append-only Merkle tree kept as the roots of its perfect subtrees, largest first.

    A tree of size n is made of one perfect subtree per set bit of n (its compact range [0, n)), so the
    state is at most log2(n) + 1 hashes and each append costs O(1) hashes amortised. A sealer can store
    `size` and `peaks` with a checkpoint and `resume` from them.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def resume(cls, size: int, peaks: Sequence[bytes]) -> Self:
        """Return a builder holding the tree of `size` leaves whose perfect-subtree roots are `peaks`."""
        if size < 0 or len(peaks) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {max(size, 0).bit_count()} peaks, got {len(peaks)}")
        if any(len(p) != HASH_SIZE for p in peaks):
            raise ValueError(f"peaks must be {HASH_SIZE}-byte hashes")
        builder = cls()
        builder._size = size
        builder._peaks = list(peaks)
        return builder

    @property
    def size(self) -> int:
        """Return the number of leaves appended."""
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        """Return the roots of the perfect subtrees, leftmost (largest) first."""
        return tuple(self._peaks)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at the right edge of the tree."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, got {len(leaf)}")
        node = leaf
        n = self._size
        # Each trailing set bit of the old size is a perfect subtree of the new node's size: merge.
        while n & 1:
            node = node_hash(self._peaks.pop(), node)
            n >>= 1
        self._peaks.append(node)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append each leaf hash in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of the leaves appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node


# --- proofs from any source of subtree roots ----------------------------------------------------------
# A sealer or a server rarely holds every leaf hash in memory. These give the ranges [start, end) whose
# subtree roots make up a proof, in proof order, so the caller can take each root from wherever it keeps
# them (stored peaks, cached blocks, the database). With `_subtree_root` they give the same proofs as
# `inclusion_proof` and `consistency_proof`.


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose subtree roots form PATH(index, D[size]), lowest node first."""
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} is outside a tree of size {size}")
    siblings: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append((mid, end))
            end = mid
        else:
            siblings.append((start, mid))
            start = mid
    return siblings[::-1]


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose subtree roots form PROOF(old_size, D[new_size]), in proof order.

    Every range lies either wholly inside the old tree, where it is one of the old tree's perfect
    subtrees (a peak), or wholly among the leaves appended since.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size ({old_size}) <= new_size ({new_size})")
    if old_size in (0, new_size):
        return []
    nodes: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            nodes.append((start + k, end))
            end = start + k
        else:
            nodes.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        nodes.append((start, end))
    return nodes[::-1]


def peak_ranges(size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges of the perfect subtrees that make up a tree of `size`, largest first."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            ranges.append((start, start + (1 << bit)))
            start += 1 << bit
    return ranges


def consistency_proof_from_peaks(old_size: int, old_peaks: Sequence[bytes], appended: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(old_size, D[old_size + len(appended)]) from the old tree's peaks and the new leaf hashes.

    What a sealer holds: the state it stored with the last checkpoint, and the leaves since.
    """
    if len(old_peaks) != old_size.bit_count():
        raise ValueError(f"a tree of size {old_size} has {old_size.bit_count()} peaks, got {len(old_peaks)}")
    peaks = dict(zip(peak_ranges(old_size), old_peaks, strict=True))
    proof: list[bytes] = []
    for start, end in consistency_proof_ranges(old_size, old_size + len(appended)):
        if end <= old_size:
            proof.append(peaks[(start, end)])
        else:
            proof.append(_subtree_root(appended, start - old_size, end - old_size))
    return proof


def _append_subtree(builder: TreeBuilder, node: bytes, height: int) -> None:
    """Append the root of a perfect subtree of 2**height leaves at the builder's right edge."""
    if builder.size % (1 << height):
        raise ValueError(f"a subtree of height {height} cannot start at leaf {builder.size}")
    n = builder.size >> height
    while n & 1:
        node = node_hash(builder._peaks.pop(), node)
        n >>= 1
    builder._peaks.append(node)
    builder._size += 1 << height


def compact_range(start: int, end: int) -> list[tuple[int, int]]:
    """Return [start, end) split into the largest aligned perfect subtrees, left to right.

    Appending their roots in order to a tree of `start` leaves gives the tree of `end` leaves, so the
    ranges of a long log can be hashed apart (in parallel) and joined in order.
    """
    if not 0 <= start <= end:
        raise ValueError(f"need 0 <= start ({start}) <= end ({end})")
    ranges: list[tuple[int, int]] = []
    p = start
    while p < end:
        height = (end - p).bit_length() - 1
        if p:
            height = min(height, (p & -p).bit_length() - 1)
        ranges.append((p, p + (1 << height)))
        p += 1 << height
    return ranges


def join_subtree(builder: TreeBuilder, node: bytes, leaves: int) -> None:
    """Append the root of a perfect subtree of `leaves` leaves (a power of two) aligned at the builder's size."""
    if leaves <= 0 or leaves & (leaves - 1):
        raise ValueError(f"a perfect subtree has a power-of-two number of leaves, not {leaves}")
    _append_subtree(builder, node, leaves.bit_length() - 1)
