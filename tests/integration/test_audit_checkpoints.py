"""The sealer over a real database: checkpoints over committed entries, resumable state, proofs, status."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.audit.checkpoint import VerifierKey
from gateway.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    root,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.proofs import ProofUnavailable, TreeCache
from gateway.audit.repository import checkpoints, latest_checkpoint
from gateway.audit.sealer import SealingRefused
from gateway.audit.status import log_status
from gateway.container import build
from gateway.store.db import Database, connect
from gateway.store.tables import audit_checkpoints, audit_entries, audit_sealer
from tests.conftest import IN_FORCE, make_settings
from tests.support.audit_log import append_entries, build_log, make_sealer
from tests.support.tokens import TokenMinter


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = connect(database_url)
    yield database
    database.dispose()


def stored_leaves(db: Database) -> list[bytes]:
    with db.read.connect() as conn:
        return [bytes(h) for h in conn.execute(select(audit_entries.c.leaf_hash).order_by("seq")).scalars()]


def test_the_first_seal_of_an_empty_log_signs_the_empty_tree(db: Database, tmp_path: Path) -> None:
    sealer = make_sealer(db, tmp_path)
    signed = sealer.seal()
    assert signed is not None
    assert signed.checkpoint.size == 0
    assert sealer.seal() is None  # nothing new


def test_a_checkpoint_commits_to_every_committed_entry_and_verifies_with_the_published_key(
    db: Database, tmp_path: Path
) -> None:
    sealer = build_log(db, tmp_path, [37])
    latest = latest_checkpoint(db)
    assert latest is not None
    assert latest.checkpoint.size == 37
    assert latest.checkpoint.root == root(stored_leaves(db))
    latest.verify([sealer.signer.verifier])


def test_successive_checkpoints_are_consistent_with_each_other(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [1, 2, 9, 64, 65, 100])
    leaves = stored_leaves(db)
    signed = list(checkpoints(db))
    assert [s.checkpoint.size for s in signed] == [1, 2, 9, 64, 65, 100]
    for old, new in itertools.pairwise(signed):
        a, b = old.checkpoint, new.checkpoint
        assert verify_consistency(a.size, b.size, a.root, b.root, consistency_proof(leaves, a.size, b.size))


def test_a_long_backlog_is_sealed_in_bounded_steps(db: Database, tmp_path: Path) -> None:
    append_entries(db, 1, 25)
    sealer = make_sealer(db, tmp_path, max_entries=10)
    sizes = []
    while (signed := sealer.seal()) is not None:
        sizes.append(signed.checkpoint.size)
    assert sizes == [10, 20, 25]


def test_a_restarted_sealer_resumes_from_its_stored_state_without_rehashing_the_log(
    db: Database, tmp_path: Path
) -> None:
    build_log(db, tmp_path, [20])
    # Spoil an already sealed entry's stored leaf hash: a sealer that re-read the log would refuse.
    with db.write.begin() as conn:
        conn.execute(update(audit_entries).where(audit_entries.c.seq == 3).values(leaf_hash=bytes(32)))
    append_entries(db, 21, 5)
    restarted = make_sealer(db, tmp_path)
    signed = restarted.seal()
    assert signed is not None
    assert signed.checkpoint.size == 25


def test_the_sealer_refuses_to_sign_when_its_stored_state_was_tampered_with(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [8])
    with db.write.begin() as conn:
        conn.execute(update(audit_sealer).where(audit_sealer.c.id == 1).values(peaks=bytes(32)))
    append_entries(db, 9, 2)
    with pytest.raises(SealingRefused, match="does not match the latest checkpoint"):
        make_sealer(db, tmp_path).seal()


def test_the_sealer_refuses_an_entry_that_does_not_match_its_leaf_hash(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [4])
    append_entries(db, 5, 3)
    with db.write.begin() as conn:
        row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == 6)).scalar_one()
        conn.execute(
            update(audit_entries).where(audit_entries.c.seq == 6).values(entry=row.replace("tester", "someone"))
        )
    with pytest.raises(SealingRefused, match="entry 6 does not match"):
        make_sealer(db, tmp_path).seal()


def test_the_sealer_refuses_a_latest_checkpoint_that_no_trusted_key_signed(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [5])
    with db.write.begin() as conn:
        note = conn.execute(select(audit_checkpoints.c.note)).scalar_one()
        conn.execute(update(audit_checkpoints).values(note=note.replace("\n5\n", "\n6\n")))
    append_entries(db, 6, 1)
    with pytest.raises(SealingRefused, match="does not verify"):
        make_sealer(db, tmp_path).seal()


def test_a_sealer_overtaken_by_another_stores_nothing(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [3])
    append_entries(db, 4, 4)
    slow, fast = make_sealer(db, tmp_path), make_sealer(db, tmp_path)
    read = slow._read_leaves

    def read_then_be_overtaken(*args: object) -> list[bytes]:
        leaves = read(*args)  # type: ignore[arg-type]
        assert fast.seal() is not None
        return leaves

    slow._read_leaves = read_then_be_overtaken  # type: ignore[method-assign]
    assert slow.seal() is None
    assert [s.checkpoint.size for s in checkpoints(db)] == [3, 7]


def test_the_gateway_seals_on_its_own_while_entries_arrive(
    database_url: str, tmp_path: Path, minter: TokenMinter
) -> None:
    from gateway.clock import FixedClock

    settings = make_settings(database_url, tmp_path / "keys", minter, audit_checkpoint_interval_seconds=0.1)
    container = build(settings, FixedClock(IN_FORCE))
    try:
        append_entries(container.db, 1, 5)
        deadline = time.monotonic() + 30  # headroom for a busy machine
        while (latest := latest_checkpoint(container.db)) is None or latest.checkpoint.size < 5:
            assert time.monotonic() < deadline, "no checkpoint was signed"
            time.sleep(0.05)
        assert container.sealer is not None
        assert container.sealer.is_leader
    finally:
        container.close()


# --- proofs from the database ----------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 4, 8])
def test_proofs_from_cached_blocks_equal_the_rfc_proofs(db: Database, tmp_path: Path, block: int) -> None:
    append_entries(db, 1, 45)
    leaves = stored_leaves(db)
    cache = TreeCache(db, block)
    for size in (1, 2, 3, 7, 8, 9, 16, 31, 33, 45):
        assert cache.root(size) == root(leaves[:size])
        for index in range(size):
            assert cache.inclusion_proof(index, size) == inclusion_proof(leaves[:size], index)
        for old in range(size + 1):
            assert cache.consistency_proof(old, size) == consistency_proof(leaves[:size], old, size)


def test_an_inclusion_proof_from_the_database_verifies_against_the_signed_root(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [2100])
    latest = latest_checkpoint(db)
    assert latest is not None
    cp = latest.checkpoint
    leaves = stored_leaves(db)
    cache = TreeCache(db)
    for index in (0, 1, 1023, 1024, 2047, 2048, 2099):
        assert verify_inclusion(leaves[index], index, cp.size, cache.inclusion_proof(index, cp.size), cp.root)


def test_a_proof_beyond_the_stored_entries_is_refused(db: Database) -> None:
    append_entries(db, 1, 3)
    with pytest.raises(ProofUnavailable):
        TreeCache(db).inclusion_proof(0, 5)


# --- status --------------------------------------------------------------------------------------


def test_the_status_shows_the_latest_checkpoint_and_that_it_verifies(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [10, 12])
    append_entries(db, 13, 2)
    status = log_status(db)
    assert status.verified, status
    assert status.entries == 14
    assert status.checkpoint is not None
    assert status.checkpoint.size == 12
    assert status.checkpoint.root_hex == root(stored_leaves(db)[:12]).hex()


def test_the_status_names_the_first_entry_that_no_longer_verifies(db: Database, tmp_path: Path) -> None:
    build_log(db, tmp_path, [10])
    with db.write.begin() as conn:
        row = conn.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == 4)).scalar_one()
        conn.execute(update(audit_entries).where(audit_entries.c.seq == 4).values(entry=row.replace("permit", "deny")))
    status = log_status(db)
    assert not status.verified
    assert status.first_bad_seq == 4


def test_the_status_fails_when_the_log_was_rewritten_under_a_signed_checkpoint(db: Database, tmp_path: Path) -> None:
    from tests.support.audit_log import ORIGIN

    sealer = build_log(db, tmp_path, [6])
    latest = latest_checkpoint(db)
    assert latest is not None
    latest.verify([VerifierKey(ORIGIN, sealer.signer.public_key)])
    # Rewrite the whole chain consistently (no checkpoint re-signed): the chain verifies, the root does not.
    from gateway.audit.writer import canonical, chain_hash, leaf_hash
    from gateway.store.tables import audit_head

    with db.write.begin() as conn:
        chain = bytes(32)
        for seq in range(1, 7):
            data = canonical({"seq": seq, "decision": "permit", "event": "forged"})
            leaf = leaf_hash(data)
            chain = chain_hash(chain, leaf)
            conn.execute(
                update(audit_entries)
                .where(audit_entries.c.seq == seq)
                .values(entry=data.decode(), leaf_hash=leaf, chain_hash=chain)
            )
        conn.execute(update(audit_head).values(chain_hash=chain))
    status = log_status(db)
    assert not status.verified
    assert status.problem is not None
    assert "checkpoint's root" in status.problem
