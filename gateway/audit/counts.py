"""Counts of indexed entries per time block and signature: an officer's count without a scan.

Derived like the search index (`gateway/audit/index.py`) and filled in the same transaction, so the
counts always cover exactly the entries 1..indexed_through. Each entry adds one to one row per level:
the block of its UTC day at that level (level L, block b: the days [b * 8**L, (b + 1) * 8**L)) and its
*signature*, the values of the columns that scopes and filters test (organisation, the participant's
region, region, the region terms, purpose, decision, event, reason). A count over whole days is then a
sum over at most 2 * 7 blocks per level, read once; the partial days at a window's edges are counted
exactly through the index.

A block keeps at most `MAX_SIGNATURES` signatures, so the table grows with time and configuration,
not with the number of entries, even if a caller sends a new purpose with every request: entries
beyond them are counted in the block's overflow row (`sig` "*") only, and a count that meets one
reads the block's eight parts instead (a day's overflow: that day through the index).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, case, func, select

from gateway.audit import bulk
from gateway.store.tables import audit_index_counts

DAY = 86_400_000_000  # microseconds
FANOUT = 8
LEVELS = 6  # a day, 8 days, 64 days, 512 days, 4096 days, 32768 days
MAX_SIGNATURES = 1024
OVERFLOW = "*"

# organisation, participant_region, region, regions, purpose, decision, event, reason
Key = tuple[str | None, str | None, str | None, str, str | None, str, str, str | None]
Block = tuple[int, int]  # (level, block)

_COLUMNS = {
    "level": "integer",
    "block": "bigint",
    "sig": "varchar",
    "organisation": "varchar",
    "participant_region": "varchar",
    "region": "varchar",
    "regions": "text",
    "purpose": "varchar",
    "decision": "varchar",
    "event": "varchar",
    "reason": "varchar",
    "n": "bigint",
}
_ADD = "ON CONFLICT (level, block, sig) DO UPDATE SET n = audit_index_counts.n + excluded.n"
_NO_KEY: Key = (None, None, None, "", None, "", "", None)


def regions_text(terms: Iterable[str]) -> str:
    """Return an entry's region terms as stored: "|hex|hex|" (hex: no separator or LIKE wildcard inside)."""
    parts = sorted(t.encode().hex() for t in terms)
    return "|" + "|".join(parts) + "|" if parts else ""


def region_needle(region: str) -> str:
    """Return what `regions` contains when one of an entry's region terms is `region`."""
    return "|" + region.encode().hex() + "|"


def signature(key: Key) -> str:
    """Return the digest that names a signature within a block."""
    return hashlib.sha256(orjson.dumps(key)).hexdigest()[:32]


def decompose(first: int, end: int) -> list[Block]:
    """Return the fewest blocks that cover the days [first, end) exactly."""
    out: list[Block] = []
    level = 0
    while first < end:
        size = FANOUT**level
        if level == LEVELS - 1:
            out += [(level, b) for b in range(first // size, end // size)]
            break
        upper = size * FANOUT
        left = min(end, -(-first // upper) * upper)
        right = max(left, end // upper * upper)
        out += [(level, b) for b in range(first // size, left // size)]
        out += [(level, b) for b in range(right // size, end // size)]
        first, end = left, right
        level += 1
    return out


def parts(block: Block) -> list[Block]:
    """Return the blocks one level down that make up `block` (a level-0 block has none)."""
    level, b = block
    return [(level - 1, b * FANOUT + k) for k in range(FANOUT)] if level else []


def runs(blocks: Sequence[Block]) -> list[tuple[int, int, int]]:
    """Return the blocks as (level, first, end) runs of consecutive blocks."""
    out: list[tuple[int, int, int]] = []
    for level, b in sorted(blocks):
        if out and out[-1][0] == level and out[-1][2] == b:
            out[-1] = (level, out[-1][1], b + 1)
        else:
            out.append((level, b, b + 1))
    return out


def add(conn: Connection, keyed: Counter[tuple[int, Key]], max_signatures: int = MAX_SIGNATURES) -> None:
    """Add the entries counted in `keyed` ((day, signature key) -> entries) to their blocks, in `conn`'s
    transaction (the index's own)."""
    per_block: dict[Block, Counter[Key]] = defaultdict(Counter)
    for (day, key), n in keyed.items():
        for level in range(LEVELS):
            per_block[(level, day // FANOUT**level)][key] += n
    c = audit_index_counts.c
    held: dict[Block, tuple[int, bool]] = {}
    for level, first, end in runs(list(per_block)):
        found = conn.execute(
            select(c.level, c.block, func.count(), func.sum(case((c.sig == OVERFLOW, 1), else_=0)))
            .where(c.level == level, c.block >= first, c.block < end)
            .group_by(c.level, c.block)
        )
        held.update(((int(r[0]), int(r[1])), (int(r[2]) - int(r[3]), bool(r[3]))) for r in found)
    rows: list[tuple[Any, ...]] = []
    signatures: dict[Key, str] = {}
    for block, counter in per_block.items():
        count, over = held.get(block, (0, False))
        known: set[str] | None = None
        if over or count + len(counter) > max_signatures:
            known = set(
                conn.execute(select(c.sig).where(c.level == block[0], c.block == block[1], c.sig != OVERFLOW)).scalars()
            )
        spilled = 0
        for key, n in counter.items():
            sig = signatures.get(key)
            if sig is None:
                sig = signatures[key] = signature(key)
            if known is not None and sig not in known:
                if over or count >= max_signatures:
                    spilled += n
                    continue
                known.add(sig)
                count += 1
            rows.append((*block, sig, *key, n))
        if spilled:
            rows.append((*block, OVERFLOW, *_NO_KEY, spilled))
    if rows:
        bulk.insert_rows(conn, "audit_index_counts", _COLUMNS, rows, _ADD)
