"""Destroying key epochs: what makes crypto-shredding reach database backups.

After a retention run destroyed the due data keys, every epoch that may close (a due month fully past, a
lifted hold's epoch, or one whose destruction a crash left half done) is destroyed in three steps:

1. one transaction re-wraps the epoch's still-live data keys into the epoch they belong to now (a
   participant under an active legal hold: `hold-<hold id>`, so held records survive and still open;
   others: the epoch of their current due date) and marks the epoch `destroying`;
2. only then, when the database no longer references the epoch, its key file is overwritten and removed;
3. the epoch is marked `destroyed` with the moment.
A crash between the steps leaves the epoch `destroying`; the next run repeats the steps (re-wrapping
anything still live) and finishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Connection, insert, or_, select, update

from gateway.clock import Clock
from gateway.crypto.epochs import DataKeyWrapper
from gateway.policies.compiled import CompiledPolicy
from gateway.retention.epochs import ZONE, closes_at, epoch_for, hold_epoch
from gateway.store.db import Database
from gateway.store.tables import data_keys, key_epochs, legal_holds, participants

log = structlog.get_logger("gateway.retention")
DESTROYING = "destroying"
DESTROYED = "destroyed"


@dataclass(frozen=True, slots=True)
class EpochDestroyed:
    """One key epoch a run destroyed."""

    epoch_id: str
    keys_moved: int
    destroyed_at: datetime


class EpochShredder:
    def __init__(
        self, db: Database, keys: DataKeyWrapper, clock: Clock, policy: Callable[[], CompiledPolicy], zone: str = ZONE
    ) -> None:
        self.db = db
        self.keys = keys
        self.clock = clock
        self.policy = policy
        self.zone = zone

    def closable(self, as_of: datetime) -> list[str]:
        """Return the epochs that may be destroyed as of `as_of` (never later than now)."""
        # Never ahead of the clock: new keys still go into the current month's epoch until it has passed.
        moment = min(as_of, self.clock.now())
        with self.db.read.connect() as conn:
            states: dict[str, str] = {r.epoch_id: r.state for r in conn.execute(select(key_epochs))}
            referenced = set(
                conn.execute(select(data_keys.c.epoch_id).where(data_keys.c.epoch_id.is_not(None)).distinct())
                .scalars()
                .all()
            )
            lifted = {
                hold_epoch(h)
                for h in conn.execute(select(legal_holds.c.id).where(legal_holds.c.lifted_at.is_not(None))).scalars()
            }
        found: list[str] = []
        for epoch_id in sorted(referenced | set(states) | set(self.keys.epochs.epoch_ids())):
            state = states.get(epoch_id)
            if state == DESTROYED:
                continue
            closes = closes_at(epoch_id, self.zone)
            if state == DESTROYING or (closes is not None and moment >= closes) or epoch_id in lifted:
                found.append(epoch_id)
        return found

    def move_into_hold(self, participant_id: str) -> int:
        """Re-wrap a held participant's live data keys into the epoch of its earliest active hold; return how many.

        Done when the hold is set, so a backup made from then on holds the keys under an epoch that stays
        while the hold runs: restoring it after the due epoch is destroyed still opens the held records.
        """
        with self.db.write.begin() as conn:
            hold_id = conn.execute(
                select(legal_holds.c.id)
                .where(legal_holds.c.participant_id == participant_id, legal_holds.c.lifted_at.is_(None))
                .order_by(legal_holds.c.set_at, legal_holds.c.id)
                .limit(1)
            ).scalar()
            if hold_id is None:
                return 0
            target = hold_epoch(hold_id)
            query = select(data_keys.c.category, data_keys.c.wrapped_key, data_keys.c.epoch_id).where(
                data_keys.c.participant_id == participant_id,
                data_keys.c.wrapped_key.is_not(None),
                or_(data_keys.c.epoch_id.is_(None), data_keys.c.epoch_id != target),
            )
            if not self.db.is_sqlite:
                query = query.with_for_update()
            rows = conn.execute(query).all()
            for row in rows:
                wrapped = self.keys.rewrap(bytes(row.wrapped_key), participant_id, row.category, row.epoch_id, target)
                conn.execute(
                    update(data_keys)
                    .where(data_keys.c.participant_id == participant_id, data_keys.c.category == row.category)
                    .values(wrapped_key=wrapped, epoch_id=target)
                )
        if rows:
            log.info("retention.epoch.held", epoch=target, keys_moved=len(rows))
        return len(rows)

    def settle_holds(self) -> int:
        """Move the keys of every participant under an active hold into its hold epoch; return how many keys."""
        with self.db.read.connect() as conn:
            held = sorted(
                set(
                    conn.execute(
                        select(legal_holds.c.participant_id).where(legal_holds.c.lifted_at.is_(None))
                    ).scalars()
                )
            )
        return sum(self.move_into_hold(pid) for pid in held)

    def destroy_closable(self, run_id: str | None, as_of: datetime) -> list[EpochDestroyed]:
        """Destroy every epoch that may close; return those destroyed."""
        # Holds set while no key store was at hand (or before key epochs) are settled first.
        self.settle_holds()
        done: list[EpochDestroyed] = []
        for epoch_id in self.closable(as_of):
            result = self.destroy(epoch_id, run_id)
            if result is not None:
                done.append(result)
        return done

    def destroy(self, epoch_id: str, run_id: str | None) -> EpochDestroyed | None:
        """Move the epoch's live keys out, then destroy its key file; return what was done (None: kept)."""
        now = self.clock.now()
        with self.db.write.begin() as conn:
            moved = self._move_live_keys(conn, epoch_id, now)
            if moved is None:
                return None
            known = conn.execute(select(key_epochs.c.keys_moved).where(key_epochs.c.epoch_id == epoch_id)).first()
            if known is None:
                conn.execute(
                    insert(key_epochs).values(
                        epoch_id=epoch_id, state=DESTROYING, run_id=run_id, keys_moved=moved, marked_at=now
                    )
                )
            else:
                conn.execute(
                    update(key_epochs)
                    .where(key_epochs.c.epoch_id == epoch_id)
                    .values(state=DESTROYING, run_id=run_id, keys_moved=known.keys_moved + moved, marked_at=now)
                )
        # Committed: no live data key refers to the epoch any more, so its key may go.
        self.keys.epochs.destroy(epoch_id)
        destroyed_at = self.clock.now()
        with self.db.write.begin() as conn:
            conn.execute(
                update(key_epochs)
                .where(key_epochs.c.epoch_id == epoch_id)
                .values(state=DESTROYED, destroyed_at=destroyed_at, run_id=run_id)
            )
        log.info("retention.epoch.destroyed", epoch=epoch_id, keys_moved=moved, run_id=run_id)
        return EpochDestroyed(epoch_id, moved, destroyed_at)

    def _move_live_keys(self, conn: Connection, epoch_id: str, now: datetime) -> int | None:
        """Re-wrap the epoch's live data keys into their current epochs; return how many (None: one cannot move)."""
        query = (
            select(data_keys.c.participant_id, data_keys.c.category, data_keys.c.wrapped_key, participants.c.region)
            .join(participants, participants.c.id == data_keys.c.participant_id)
            .where(data_keys.c.epoch_id == epoch_id, data_keys.c.wrapped_key.is_not(None))
        )
        if not self.db.is_sqlite:
            query = query.with_for_update(of=data_keys)
        live = conn.execute(query).all()
        if not live:
            return 0
        pids = sorted({r.participant_id for r in live})
        holds = conn.execute(
            select(legal_holds.c.id, legal_holds.c.participant_id, legal_holds.c.set_at, legal_holds.c.lifted_at)
            .where(legal_holds.c.participant_id.in_(pids))
            .order_by(legal_holds.c.set_at, legal_holds.c.id)
        ).all()
        active: dict[str, str] = {}
        last_lift: dict[str, datetime] = {}
        for h in holds:
            if h.lifted_at is None:
                active.setdefault(h.participant_id, h.id)
            else:
                last_lift[h.participant_id] = max(h.lifted_at, last_lift.get(h.participant_id, h.lifted_at))
        policy = self.policy()
        targets = [
            hold_epoch(active[r.participant_id])
            if r.participant_id in active
            else epoch_for(policy, r.region, r.category, now, last_lift.get(r.participant_id), self.zone)
            for r in live
        ]
        if epoch_id in targets:
            log.warning("retention.epoch.kept", epoch=epoch_id, reason="a live key still belongs to it")
            return None
        for row, target in zip(live, targets, strict=True):
            pid = row.participant_id
            wrapped = self.keys.rewrap(bytes(row.wrapped_key), pid, row.category, epoch_id, target)
            conn.execute(
                update(data_keys)
                .where(
                    data_keys.c.participant_id == pid,
                    data_keys.c.category == row.category,
                    data_keys.c.epoch_id == epoch_id,
                )
                .values(wrapped_key=wrapped, epoch_id=target)
            )
        return len(live)
