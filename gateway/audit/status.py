"""The verification status of the audit log, in one call, for pages and reports to show plainly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from gateway.audit.chain import verify_chain
from gateway.audit.checkpoint import CheckpointError, VerifierKey, parse
from gateway.audit.merkle import TreeBuilder, leaf_hash
from gateway.store.db import Database
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head, audit_signing_keys


@dataclass(frozen=True, slots=True)
class CheckpointSummary:
    """The latest signed checkpoint: tree size, root hash (hex) and when it was signed (UTC)."""

    size: int
    root_hex: str
    time: datetime


@dataclass(frozen=True, slots=True)
class LogStatus:
    """How many entries the log holds, its latest checkpoint, and whether everything verifies.

    `verified` is true when the hash chain is intact over every entry, the latest checkpoint's
    signature verifies with a published key, and the Merkle root recomputed from the entries equals
    the checkpoint's root. `problem` says what failed first (and `first_bad_seq` where, if known).
    """

    entries: int
    checkpoint: CheckpointSummary | None
    verified: bool
    problem: str | None = None
    first_bad_seq: int | None = None


def latest_checkpoint_size(db: Database) -> int | None:
    """Return the size of the latest signed checkpoint (None before the first): a cheap test for news."""
    with db.read.connect() as conn:
        size = conn.execute(select(func.max(audit_checkpoints.c.tree_size))).scalar_one()
    return int(size) if size is not None else None


def log_status(db: Database, verify: bool = True, batch: int = 20_000) -> LogStatus:
    """Return the log's status; with `verify=False` skip the full recomputation (count and checkpoint only)."""
    with db.read.connect() as conn:
        entries = int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())
        row = conn.execute(
            select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
        ).first()
        keys = [bytes(k) for k in conn.execute(select(audit_signing_keys.c.public_key)).scalars()]
    if row is None:
        summary = None
        signed = None
    else:
        signed = parse(row.note)
        cp = signed.checkpoint
        summary = CheckpointSummary(cp.size, cp.root_hex, cp.time)
    if not verify:
        return LogStatus(entries, summary, False, "not verified (verification was skipped)")
    chain = verify_chain(db, batch)
    if not chain.ok:
        return LogStatus(entries, summary, False, chain.problem, chain.first_bad_seq)
    if signed is None:
        return LogStatus(entries, None, True, "no checkpoint has been signed yet")
    cp = signed.checkpoint
    try:
        signed.verify(VerifierKey(cp.origin, k) for k in keys)
    except CheckpointError as exc:
        return LogStatus(entries, summary, False, f"latest checkpoint: {exc}")
    if cp.size > entries:
        return LogStatus(entries, summary, False, "the latest checkpoint covers entries the log no longer holds")
    tree = TreeBuilder()
    with db.read.connect() as conn:
        while tree.size < cp.size:
            texts = conn.execute(
                select(audit_entries.c.entry)
                .where(audit_entries.c.seq > tree.size, audit_entries.c.seq <= cp.size)
                .order_by(audit_entries.c.seq)
                .limit(batch)
            ).scalars()
            before = tree.size
            tree.extend(leaf_hash(t.encode()) for t in texts)
            if tree.size == before:
                break
    if tree.size != cp.size or tree.root() != cp.root:
        return LogStatus(entries, summary, False, "the entries do not hash to the latest checkpoint's root")
    return LogStatus(entries, summary, True)
