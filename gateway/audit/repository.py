"""Queries for the evidence half of the log: checkpoints, published keys, a partner's own entries."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from gateway.audit.checkpoint import SignedCheckpoint, VerifierKey, parse
from gateway.audit.index import indexed_through
from gateway.audit.signing_keys import published_keys as key_dir_keys
from gateway.store.db import Database
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head, audit_index, audit_signing_keys


@dataclass(frozen=True, slots=True)
class PublishedVerifierKey:
    """A checkpoint verifier key and whether it signs new checkpoints now."""

    key: VerifierKey
    current: bool


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored: sequence number, canonical bytes (text) and leaf hash."""

    seq: int
    entry: str
    leaf_hash: bytes


def latest_checkpoint(db: Database) -> SignedCheckpoint | None:
    """Return the latest signed checkpoint, or None when none was signed."""
    with db.read.connect() as conn:
        note = conn.execute(
            select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
        ).scalar()
    return parse(note) if note is not None else None


def checkpoint_at(db: Database, size: int) -> SignedCheckpoint | None:
    """Return the checkpoint signed at exactly `size`, if there is one."""
    with db.read.connect() as conn:
        note = conn.execute(select(audit_checkpoints.c.note).where(audit_checkpoints.c.tree_size == size)).scalar()
    return parse(note) if note is not None else None


def checkpoints(db: Database, upto: int | None = None) -> Iterator[SignedCheckpoint]:
    """Yield every stored checkpoint (up to size `upto`), smallest first."""
    query = select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.tree_size)
    if upto is not None:
        query = query.where(audit_checkpoints.c.tree_size <= upto)
    with db.read.connect() as conn:
        for note in conn.execute(query).scalars():
            yield parse(note)


def entry_count(db: Database) -> int:
    """Return the number of committed entries."""
    with db.read.connect() as conn:
        return int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())


def verifier_keys(db: Database, key_dir: Path | None, origin: str) -> list[PublishedVerifierKey]:
    """Return every key that signs or has signed checkpoints of `origin`: the key dir's published
    keys (current and retired) and any key a stored checkpoint was signed with."""
    seen: dict[bytes, bool] = {}
    if key_dir is not None:
        for published in key_dir_keys(key_dir):
            seen[published.public_key] = published.current
    with db.read.connect() as conn:
        for raw in conn.execute(select(audit_signing_keys.c.public_key).order_by(audit_signing_keys.c.first_used_at)):
            seen.setdefault(bytes(raw.public_key), False)
    return [PublishedVerifierKey(VerifierKey(origin, k), current) for k, current in seen.items()]


def entries_of_organisation(db: Database, organisation: str, after: int, limit: int, upto: int) -> list[StoredEntry]:
    """Return up to `limit` entries of `organisation` with after < seq <= upto, in order.

    Found through the officer's index up to where it reaches, then in the log beyond it (the tail).
    """
    e = audit_entries.c
    with db.read.connect() as conn:
        through = indexed_through(conn)
        found = select(audit_index.c.seq).where(
            audit_index.c.organisation == organisation,
            audit_index.c.seq > after,
            audit_index.c.seq <= min(upto, through),
        )
        rows = list(
            conn.execute(
                select(e.seq, e.entry, e.leaf_hash)
                .where(e.seq.in_(found.order_by(audit_index.c.seq).limit(limit).scalar_subquery()))
                .order_by(e.seq)
            ).all()
        )
        if len(rows) < limit and upto > through:
            rows += conn.execute(
                select(e.seq, e.entry, e.leaf_hash)
                .where(e.organisation == organisation, e.seq > max(after, through), e.seq <= upto)
                .order_by(e.seq)
                .limit(limit - len(rows))
            ).all()
    return [StoredEntry(int(r.seq), r.entry, bytes(r.leaf_hash)) for r in rows]


def entries(db: Database, after: int, upto: int, batch: int = 20_000) -> Iterator[StoredEntry]:
    """Yield every entry with after < seq <= upto, in order, reading `batch` at a time."""
    last = after
    while last < upto:
        with db.read.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.seq, audit_entries.c.entry, audit_entries.c.leaf_hash)
                .where(audit_entries.c.seq > last, audit_entries.c.seq <= upto)
                .order_by(audit_entries.c.seq)
                .limit(batch)
            ).all()
        if not rows:
            return
        for r in rows:
            yield StoredEntry(int(r.seq), r.entry, bytes(r.leaf_hash))
        last = int(rows[-1].seq)
