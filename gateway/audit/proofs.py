"""Inclusion and consistency proofs served from the database, without holding every leaf in memory.

A proof is O(log n) subtree roots. Every range in a proof either fits within one aligned block of
`BLOCK` leaves, or is a run of whole blocks (plus, at the right edge of the tree, a partial block).
So the cache keeps the root of every complete block, and above them every perfect subtree of whole
blocks (2n / 256 hashes: 2.5 MB at 10 M entries), extended as the log grows; a proof then costs
O(log n) lookups and reads at most a block or two of leaf hashes.

The leaf hashes come from the database as stored. That needs no trust: a client checks every proof
against a checkpoint whose signature it verified.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from gateway.audit.fasthash import tree_root as root
from gateway.audit.merkle import compact_range, consistency_proof_ranges, inclusion_proof_ranges, node_hash
from gateway.store.db import Database
from gateway.store.tables import audit_entries

BLOCK = 256
_READ_BATCH = 64 * BLOCK


class ProofUnavailable(Exception):
    """The leaves a proof needs are not in the database (a gap, or a size beyond the log)."""


class TreeCache:
    """Roots of complete blocks of leaves, and the proofs and roots computed from them."""

    def __init__(self, db: Database, block: int = BLOCK) -> None:
        if block <= 0 or block & (block - 1):
            raise ValueError("the block size is a power of two")
        self._db = db
        self._block = block
        self._levels: list[list[bytes]] = [[]]  # [k]: roots of aligned perfect subtrees of block * 2**k leaves
        self._lock = threading.Lock()

    def _leaves(self, start: int, end: int) -> list[bytes]:
        """Return the stored leaf hashes of leaves start..end-1 (entries start+1..end)."""
        with self._db.read.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.leaf_hash)
                .where(audit_entries.c.seq > start, audit_entries.c.seq <= end)
                .order_by(audit_entries.c.seq)
            ).scalars()
            leaves = [bytes(h) for h in rows]
        if len(leaves) != end - start:
            raise ProofUnavailable(f"the log does not hold entries {start + 1} to {end}")
        return leaves

    def _ensure(self, size: int) -> None:
        """Extend the cached roots to every block, and every perfect run of blocks, complete within `size`."""
        want = size // self._block
        with self._lock:
            blocks = self._levels[0]
            while len(blocks) < want:
                start = len(blocks) * self._block
                end = min(want * self._block, start + _READ_BATCH)
                leaves = self._leaves(start, end)
                blocks.extend(root(leaves[i : i + self._block]) for i in range(0, len(leaves), self._block))
            k = 1
            while len(self._levels[k - 1]) >= 2:
                if len(self._levels) == k:
                    self._levels.append([])
                below, level = self._levels[k - 1], self._levels[k]
                for i in range(len(level), len(below) // 2):
                    level.append(node_hash(below[2 * i], below[2 * i + 1]))
                k += 1

    def subtree_root(self, start: int, end: int) -> bytes:
        """Return MTH of leaves start..end-1, where [start, end) is a node of some tree (aligned)."""
        b = self._block
        if end - start <= b or start // b == (end - 1) // b:
            return root(self._leaves(start, end))
        if start % b:
            raise ValueError(f"range [{start}, {end}) is not a node of the tree")
        self._ensure(end)
        full = end - end % b
        # The node's perfect subtrees, left to right (whole blocks from the cache), then a partial block.
        pieces = [self._levels[((e - s) // b).bit_length() - 1][s // (e - s)] for s, e in compact_range(start, full)]
        if end > full:
            pieces.append(root(self._leaves(full, end)))
        node = pieces[-1]
        for piece in reversed(pieces[:-1]):
            node = node_hash(piece, node)
        return node

    def root(self, size: int) -> bytes:
        """Return the root of the tree of the first `size` leaves."""
        return self.subtree_root(0, size) if size else root([])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return the audit path of leaf `index` (0-based) in the tree of `size` leaves."""
        return [self.subtree_root(s, e) for s, e in inclusion_proof_ranges(index, size)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Return the proof that the tree of `new_size` leaves extends the tree of `old_size`."""
        return [self.subtree_root(s, e) for s, e in consistency_proof_ranges(old_size, new_size)]
