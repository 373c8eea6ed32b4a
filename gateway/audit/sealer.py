"""The sealer: extends the Merkle tree over newly committed entries and signs checkpoints.

Order comes from the database (the writer's `audit_head` lock gives gap-free sequence numbers); the
tree is built by exactly one sealer. On PostgreSQL, gateway processes elect the sealer with a
session advisory lock, held for as long as its connection lives; when that process stops, another
takes over at its next tick. On SQLite the one process is the sealer.

The sealer keeps the tree's state (size and perfect-subtree roots) in `audit_sealer`, updated in the
same transaction that stores a checkpoint, so a restart resumes without rehashing the log. A seal
only commits when the state it started from is still current, so even two sealers (a process and an
on-demand `gateway audit checkpoint`) can never store two different trees.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, insert, select, text, update

from gateway.audit import index
from gateway.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    SignedCheckpoint,
    VerifierKey,
    parse,
    raw_public_key,
    sign,
)
from gateway.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    TreeBuilder,
    consistency_proof_from_peaks,
    leaf_hash,
    verify_consistency,
)
from gateway.audit.proofs import TreeCache
from gateway.clock import Clock
from gateway.store.db import Database
from gateway.store.tables import audit_checkpoints, audit_entries, audit_head, audit_sealer, audit_signing_keys

log = structlog.get_logger("gateway.audit.sealer")

# pg_advisory_lock key of the sealer election: the first 8 bytes of SHA-256("lvv-gateway audit sealer").
SEALER_LOCK_KEY = 0x2D5F_7A31_4C0E_9B12
_READ_BATCH = 20_000


class InconsistentCheckpoint(Exception):
    """The signer was asked to sign a tree that does not extend the one it signed before."""


class SealingRefused(Exception):
    """The stored log or sealer state does not add up; the sealer signs nothing until it is resolved."""


class _Overtaken(Exception):
    """Another sealer stored a checkpoint since this one read the state."""


def sealer_identity() -> str:
    """Return this process's name in `audit_checkpoints.sealer` (pid@host)."""
    return f"{os.getpid()}@{socket.gethostname()}"[:128]


class CheckpointSigner:
    """Signs checkpoints, and refuses any that is not consistent with the last one it signed.

    "The last one it signed" is both the latest checkpoint in the database and the one this signer
    remembers in its own state file next to the key (`memory`), so a database rolled back or
    rewritten behind the signer's back cannot make it sign a second history.
    """

    def __init__(
        self,
        key: Ed25519PrivateKey,
        origin: str,
        clock: Clock,
        memory: Path | None = None,
        continues: str | None = None,
    ) -> None:
        self._key = key
        self.origin = origin
        # A fork's signer (a rehearsal) may extend the last checkpoint of the log it was copied from.
        self.continues = continues
        self._clock = clock
        self._memory = memory
        self.public_key = raw_public_key(key.public_key())
        self._lock = threading.Lock()

    @property
    def verifier(self) -> VerifierKey:
        """Return the public key of this signer under its origin."""
        return VerifierKey(self.origin, self.public_key)

    def remembered(self) -> Checkpoint | None:
        """Return the last checkpoint this signer signed (from its state file), if it keeps one."""
        if self._memory is None or not self._memory.exists():
            return None
        return parse(self._memory.read_text()).checkpoint

    def sign(
        self,
        size: int,
        root: bytes,
        previous: Checkpoint | None,
        proof: Sequence[bytes],
        proof_from: Callable[[int], Sequence[bytes]] | None = None,
    ) -> SignedCheckpoint:
        """Return the signed checkpoint of (size, root) once `proof` shows it extends `previous`.

        Raise InconsistentCheckpoint when it does not, or when this signer remembers signing a
        checkpoint that the new tree does not extend. When another process signed since (its memory
        is older than `previous`), `proof_from(m)` must give the proof from size m to `size`.
        """
        with self._lock:
            if previous is None:
                if size == 0 and root != EMPTY_ROOT:
                    raise InconsistentCheckpoint("the empty tree has the empty root")
            else:
                if previous.origin not in (self.origin, self.continues):
                    raise InconsistentCheckpoint(f"the previous checkpoint is of another log ({previous.origin})")
                if not verify_consistency(previous.size, size, previous.root, root, proof):
                    raise InconsistentCheckpoint(
                        f"a tree of size {size} with root {root.hex()} does not extend the checkpoint of size "
                        f"{previous.size} with root {previous.root.hex()}"
                    )
            mine = self.remembered()
            if mine is not None and mine.origin == self.origin:
                if previous is None or mine.size > previous.size:
                    raise InconsistentCheckpoint(
                        f"this signer signed a checkpoint of size {mine.size} that the log no longer holds "
                        f"(remembered in {self._memory}; a deliberately new log needs a new key or origin)"
                    )
                if mine.size == previous.size and mine.root != previous.root:
                    raise InconsistentCheckpoint(f"split view: another root was signed for size {mine.size}")
                if mine.size < previous.size and (
                    proof_from is None
                    or not verify_consistency(mine.size, size, mine.root, root, proof_from(mine.size))
                ):
                    raise InconsistentCheckpoint(
                        f"a tree of size {size} does not extend the checkpoint of size {mine.size} this signer signed"
                    )
            moment = self._clock.now().replace(microsecond=0)
            if previous is not None and moment < previous.time:
                moment = previous.time  # a checkpoint never claims to be older than the one it extends
            return sign(Checkpoint(self.origin, size, root, moment), self._key)

    def remember(self, signed: SignedCheckpoint) -> None:
        """Record `signed` as the last checkpoint this signer signed (when it keeps a state file)."""
        if self._memory is None:
            return
        with self._lock:
            mine = self.remembered()
            if mine is not None and mine.origin == signed.checkpoint.origin and mine.size >= signed.checkpoint.size:
                return
            tmp = self._memory.with_name(self._memory.name + f".{os.getpid()}.tmp")
            tmp.write_text(signed.text)
            os.replace(tmp, self._memory)


@dataclass(frozen=True, slots=True)
class SealerState:
    size: int
    peaks: tuple[bytes, ...]

    @classmethod
    def from_row(cls, size: int, packed: bytes) -> SealerState:
        """Return the state stored as a size and concatenated 32-byte peaks."""
        peaks = tuple(packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE))
        return cls(size, peaks)


def latest_checkpoint(conn: Connection) -> SignedCheckpoint | None:
    """Return the latest stored checkpoint, or None."""
    note = conn.execute(
        select(audit_checkpoints.c.note).order_by(audit_checkpoints.c.tree_size.desc()).limit(1)
    ).scalar()
    return parse(note) if note is not None else None


class Sealer:
    """Builds the tree over committed entries and signs checkpoints; elected on PostgreSQL."""

    def __init__(
        self,
        db: Database,
        signer: CheckpointSigner,
        interval: float = 10.0,
        max_entries: int = 100_000,
        trusted_keys: Sequence[bytes] = (),
    ) -> None:
        self._db = db
        self.signer = signer
        self._interval = interval
        self._max_entries = max_entries
        self._trusted = {signer.public_key, *trusted_keys}
        self._seal_lock = threading.Lock()
        self._stop = threading.Event()
        self._lock_conn: Connection | None = None
        self._thread: threading.Thread | None = None
        self.identity = sealer_identity()
        self.sealed = 0
        self.indexed = 0

    # --- election -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Return whether the sealing loop runs (or is not meant to: an interval of 0 seals on demand)."""
        if self._interval <= 0:
            return True
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    @property
    def is_leader(self) -> bool:
        """Return whether this process is the elected sealer."""
        return self._db.is_sqlite or self._lock_conn is not None

    def _elect(self) -> bool:
        if self._db.is_sqlite:
            return True
        if self._lock_conn is not None:
            try:
                self._lock_conn.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("audit.sealer.lock_lost", sealer=self.identity)
                self._release()
                return False
        conn = self._db.write.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            won = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SEALER_LOCK_KEY}).scalar())
        except Exception:
            conn.close()
            raise
        if not won:
            conn.close()
            return False
        self._lock_conn = conn
        log.info("audit.sealer.elected", sealer=self.identity)
        return True

    def _release(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SEALER_LOCK_KEY})
        except Exception:
            pass  # closing the session releases the lock anyway
        finally:
            conn.invalidate()  # never return a session holding the lock to the pool

    # --- the background loop --------------------------------------------------------------------

    def start(self) -> None:
        """Seal every `interval` seconds while this process is the elected sealer (no-op if interval is 0)."""
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._elect():
                    self.seal()
            except Exception as exc:
                log.error("audit.sealer.failed", error=type(exc).__name__, detail=str(exc)[:300])
            try:
                if self.is_leader:
                    # The officer's search index follows behind, in batches (derived data, not evidence).
                    self.indexed += index.catch_up(self._db, batch=index.LIVE_BATCH, limit=self._max_entries)
            except Exception as exc:
                log.error("audit.index.failed", error=type(exc).__name__, detail=str(exc)[:300])

    def close(self) -> None:
        """Stop the loop and give up the sealer role."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self._release()

    # --- sealing --------------------------------------------------------------------------------

    def seal(self) -> SignedCheckpoint | None:
        """Extend the tree over entries committed since the last checkpoint and sign a checkpoint.

        Return the new checkpoint, or None when there is nothing new or another sealer got there
        first. The first seal of an empty log signs the empty tree, so witnesses have a start.
        """
        with self._seal_lock:
            return self._seal()

    def _seal(self) -> SignedCheckpoint | None:
        with self._db.read.connect() as conn:
            row = conn.execute(
                select(audit_sealer.c.tree_size, audit_sealer.c.peaks).where(audit_sealer.c.id == 1)
            ).one()
            state = SealerState.from_row(int(row.tree_size), bytes(row.peaks))
            previous = latest_checkpoint(conn)
            head = int(conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one())
            self._check_state(state, previous, self._trusted)
            target = min(head, state.size + self._max_entries)
            if previous is not None and target == state.size:
                return None
            appended = self._read_leaves(conn, state.size, target)
        tree = TreeBuilder.resume(state.size, state.peaks)
        tree.extend(appended)
        proof = consistency_proof_from_peaks(state.size, state.peaks, appended)
        try:
            signed = self.signer.sign(
                tree.size,
                tree.root(),
                previous.checkpoint if previous is not None else None,
                proof,
                lambda old: TreeCache(self._db).consistency_proof(old, tree.size),
            )
        except InconsistentCheckpoint:
            if self._stored_size() != state.size:
                return None  # another sealer (sharing this key's memory) signed meanwhile: not a fork
            raise
        cp = signed.checkpoint
        try:
            self._store(state, tree, signed)
        except _Overtaken:
            return None
        self.signer.remember(signed)
        self.sealed += 1
        log.info("audit.checkpoint.signed", tree_size=cp.size, root=cp.root_hex, sealer=self.identity)
        return signed

    def _stored_size(self) -> int:
        with self._db.read.connect() as conn:
            return int(conn.execute(select(audit_sealer.c.tree_size).where(audit_sealer.c.id == 1)).scalar_one())

    def _store(self, state: SealerState, tree: TreeBuilder, signed: SignedCheckpoint) -> None:
        cp = signed.checkpoint
        with self._db.write.begin() as conn:
            moved = conn.execute(
                update(audit_sealer)
                .where(audit_sealer.c.id == 1, audit_sealer.c.tree_size == state.size)
                .values(tree_size=tree.size, peaks=b"".join(tree.peaks), updated_at=cp.time)
            )
            if moved.rowcount != 1:
                raise _Overtaken
            conn.execute(
                insert(audit_checkpoints).values(
                    tree_size=cp.size,
                    root_hash=cp.root,
                    signed_at=cp.time,
                    key_id=signed.signatures[0].key_id.hex(),
                    note=signed.text,
                    sealer=self.identity,
                )
            )
            known = conn.execute(
                select(audit_signing_keys.c.public_key).where(audit_signing_keys.c.public_key == self.signer.public_key)
            ).first()
            if known is None:
                conn.execute(
                    insert(audit_signing_keys).values(public_key=self.signer.public_key, first_used_at=cp.time)
                )

    def _check_state(self, state: SealerState, previous: SignedCheckpoint | None, trusted: set[bytes]) -> None:
        try:
            tree = TreeBuilder.resume(state.size, state.peaks)
        except ValueError as exc:
            raise SealingRefused(f"the stored sealer state is malformed: {exc}") from None
        if previous is None:
            if state.size != 0:
                raise SealingRefused("the sealer state has leaves but no checkpoint was ever stored")
            return
        cp = previous.checkpoint
        try:
            previous.verify(VerifierKey(cp.origin, k) for k in trusted)
        except CheckpointError as exc:
            raise SealingRefused(f"the latest stored checkpoint does not verify: {exc}") from None
        if cp.size != state.size or cp.root != tree.root():
            raise SealingRefused(
                f"the sealer state (size {state.size}) does not match the latest checkpoint (size {cp.size})"
            )

    def _read_leaves(self, conn: Connection, after: int, upto: int) -> list[bytes]:
        """Return the leaf hashes of entries after..upto, recomputed from the stored bytes and checked."""
        leaves: list[bytes] = []
        last = after
        while last < upto:
            rows = conn.execute(
                select(audit_entries.c.seq, audit_entries.c.entry, audit_entries.c.leaf_hash)
                .where(audit_entries.c.seq > last, audit_entries.c.seq <= upto)
                .order_by(audit_entries.c.seq)
                .limit(_READ_BATCH)
            ).all()
            if not rows:
                raise SealingRefused(f"entry {last + 1} is missing")
            for row in rows:
                if row.seq != last + 1:
                    raise SealingRefused(f"entry {last + 1} is missing")
                leaf = leaf_hash(row.entry.encode())
                if leaf != bytes(row.leaf_hash):
                    raise SealingRefused(f"entry {row.seq} does not match its stored leaf hash")
                leaves.append(leaf)
                last = row.seq
        return leaves
