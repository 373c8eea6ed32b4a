"""Verify the audit hash chain stored in the database (first version of log verification)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from gateway.audit.writer import chain_hash, leaf_hash
from gateway.store.db import Database
from gateway.store.tables import audit_entries, audit_head


@dataclass(frozen=True)
class ChainReport:
    entries: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(db: Database, batch: int = 10_000) -> ChainReport:
    """Recompute every leaf and chain hash in order; report the first entry that does not match."""
    chain = bytes(32)
    expected = 1
    with db.read.connect() as conn:
        head = conn.execute(select(audit_head.c.seq, audit_head.c.chain_hash).where(audit_head.c.id == 1)).one()
        last = 0
        while True:
            rows = conn.execute(
                select(
                    audit_entries.c.seq,
                    audit_entries.c.entry,
                    audit_entries.c.leaf_hash,
                    audit_entries.c.chain_hash,
                )
                .where(audit_entries.c.seq > last)
                .order_by(audit_entries.c.seq)
                .limit(batch)
            ).all()
            if not rows:
                break
            for row in rows:
                if row.seq != expected:
                    return ChainReport(expected - 1, False, expected, f"entry {expected} is missing")
                leaf = leaf_hash(row.entry.encode())
                if leaf != bytes(row.leaf_hash):
                    return ChainReport(expected - 1, False, row.seq, "entry content does not match its leaf hash")
                chain = chain_hash(chain, leaf)
                if chain != bytes(row.chain_hash):
                    return ChainReport(expected - 1, False, row.seq, "chain hash does not link to the entry before")
                expected += 1
            last = rows[-1].seq
    count = expected - 1
    if head.seq != count or bytes(head.chain_hash) != chain:
        return ChainReport(count, False, count + 1, "the head does not match the last entry (truncated log?)")
    return ChainReport(count, True)
