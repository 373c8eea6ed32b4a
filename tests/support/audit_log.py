"""Build synthetic audit logs with checkpoints, and rewrite them the way a dishonest operator would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import delete, select, update

from gateway.audit.sealer import CheckpointSigner, Sealer
from gateway.audit.signing_keys import init_checkpoint_key, load_checkpoint_key
from gateway.audit.writer import AuditWriter, canonical, chain_hash, leaf_hash
from gateway.clock import FixedClock
from gateway.store.db import Database
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head, audit_sealer, audit_signing_keys

ORIGIN = "gateway.test/audit"
START = datetime(2024, 11, 15, 9, 0, tzinfo=UTC)
ORGS = ["amsterdam", "rotterdam", "ind", "ngo-opvang-amsterdam"]


def synthetic_entry(i: int) -> dict[str, object]:
    """Return a synthetic decision entry (no personal data: ids are made up)."""
    return {
        "v": 1,
        "event": "exchange.read",
        "time": (START + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
        "organisation": ORGS[i % len(ORGS)],
        "client_id": f"client-{ORGS[i % len(ORGS)]}",
        "acting_user": f"tester.{i % 7}",
        "role": "case_manager",
        "purpose": "lso_case_discussion",
        "decision": "permit" if i % 5 else "deny",
        "reason": "permitted" if i % 5 else "no_rule_for_purpose",
        "participant": f"00000000-0000-4000-8000-{i % 97:012d}",
        "trace_id": f"{i:032x}",
    }


def make_sealer(
    db: Database,
    key_dir: Path,
    clock: FixedClock | None = None,
    max_entries: int = 100_000,
    origin: str = ORIGIN,
) -> Sealer:
    """Return a sealer signing with the key in `key_dir` (created when missing); it remembers what it signed."""
    init_checkpoint_key(key_dir)
    key = load_checkpoint_key(key_dir)
    assert key is not None
    signer = CheckpointSigner(key, origin, clock or FixedClock(START), key_dir / "checkpoint.last")
    return Sealer(db, signer, interval=0, max_entries=max_entries)


def append_entries(db: Database, first: int, count: int) -> None:
    """Append `count` synthetic entries numbered from `first`, durably, in group commits."""
    writer = AuditWriter(db)
    try:
        futures = [writer.submit(synthetic_entry(i), START) for i in range(first, first + count)]
        for future in futures:
            future.result(timeout=60)
    finally:
        writer.close()


def build_log(db: Database, key_dir: Path, sizes: list[int]) -> Sealer:
    """Append synthetic entries and sign a checkpoint at each size in `sizes` (ascending)."""
    sealer = make_sealer(db, key_dir)
    done = 0
    for size in sizes:
        append_entries(db, done + 1, size - done)
        done = size
        assert sealer.seal() is not None
    return sealer


def rewrite_history(db: Database, key_dir: Path, seq: int, field: str, value: object, origin: str = ORIGIN) -> None:
    """Change one entry and everything that hashes it, then re-sign the log with the same key.

    What an operator with the database and the signing key could do: recompute leaf and chain
    hashes, drop the checkpoints and the sealer state, make the signer forget, and sign anew at the
    same sizes. Only a checkpoint kept elsewhere can show the log was rewritten.
    """
    with db.write.begin() as conn:
        sizes = [int(s) for s in conn.execute(select(audit_checkpoints.c.tree_size).order_by("tree_size")).scalars()]
        rows = conn.execute(select(audit_entries.c.seq, audit_entries.c.entry).order_by(audit_entries.c.seq)).all()
        chain = bytes(32)
        for row in rows:
            entry = orjson.loads(row.entry)
            if row.seq == seq:
                entry[field] = value
            data = canonical(entry)
            leaf = leaf_hash(data)
            chain = chain_hash(chain, leaf)
            conn.execute(
                update(audit_entries)
                .where(audit_entries.c.seq == row.seq)
                .values(entry=data.decode(), leaf_hash=leaf, chain_hash=chain)
            )
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(chain_hash=chain))
        conn.execute(delete(audit_checkpoints))
        conn.execute(delete(audit_signing_keys))
        conn.execute(update(audit_sealer).where(audit_sealer.c.id == 1).values(tree_size=0, peaks=b""))
    (key_dir / "checkpoint.last").unlink(missing_ok=True)
    previous = 0
    for size in sizes:
        sealer = make_sealer(db, key_dir, max_entries=size - previous, origin=origin)
        assert sealer.seal() is not None
        previous = size
