"""The retention run: destroy what is due by crypto-shredding, keep what is held or archived, log each one.

For a batch of participants (one by default up to a few hundred), one transaction re-checks their
holds, destroys the category data keys that are due (`wrapped_key` set to NULL, `destroyed_at` set),
deletes those categories' ciphertext rows and records what was destroyed (`retention_destructions`,
no content). One audit entry per participant (`retention.destroyed`) is appended right after; entries
a crash left unwritten are appended by the next run before anything else. A run can therefore be
interrupted at any moment: what committed stays destroyed and logged, a rerun continues the rest. A run
whose process died (killed, power lost) is closed by the next run as `interrupted`, with the counts its
destruction rows state, so it gets a destruction record too; the next run takes the lease at once when
the holder's process is gone from this host, or when its heartbeat is stale (a holder on another host
renews `retention_heartbeat_at` every `heartbeat_seconds` while it runs; one silent for longer than
`heartbeat_grace_seconds` is dead), and after the lease expires otherwise. A run that finds its lease
taken over stops before its next batch and ends `interrupted`. The heartbeat is wall-clock time (a
simulated clock may stand still), so hosts' clocks must agree to well within the grace. On SQLite
the write-ahead log is checkpointed and truncated afterwards, so old pages with wrapped keys leave it
(secure_delete overwrites freed space in the database file itself).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from gateway.audit.writer import Appended, AuditUnavailable, AuditWriter
from gateway.clock import Clock, SystemClock
from gateway.crypto.epochs import DataKeyWrapper
from gateway.lifecycle.events import Actor, iso, lifecycle_entry
from gateway.lifecycle.repository import holds_by_participant
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import RetentionTrigger
from gateway.retention.epoch_shred import EpochDestroyed, EpochShredder
from gateway.retention.model import METHOD, DueItem, KeptGroup, LiveKey, RetentionPlan
from gateway.retention.plan import plan, rules_by_category
from gateway.store.db import Database
from gateway.store.tables import (
    audit_entries,
    data_keys,
    legal_holds,
    lifecycle_state,
    participants,
    records,
    retention_destructions,
    retention_runs,
)

log = structlog.get_logger("gateway.retention")
Progress = Callable[[int, int], None]
LEASE = timedelta(minutes=10)
Step = Callable[[str], None]  # called after each step of a run ("destroyed", "logged"); tests crash there
# The (run, participant) pairs of one batched audit call, in order, and the call's future.
_Queued = tuple[list[tuple[str, str]], Future[list[Appended]]]


def _proc_stat(pid: int) -> list[str] | None:
    """Return the fields after the command name in /proc/<pid>/stat (state first), or None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return None


def _host() -> str:
    return socket.gethostname()[:96]


def holder_identity() -> str:
    """Return this process's lease holder name: pid, start time (Linux) and host, so a dead holder is known."""
    pid = os.getpid()
    fields = _proc_stat(pid)
    start = f"#{fields[19]}" if fields is not None and len(fields) > 19 else ""
    return f"{pid}@{_host()}{start}"[:128]


def holder_alive(holder: str) -> bool:
    """Return False only when `holder` is a process on this host that is gone (or a zombie, or its pid reused)."""
    ident, _, start = holder.partition("#")
    pid_text, _, host = ident.partition("@")
    if host != _host() or not pid_text.isdigit():
        return True  # another host's process: only its lease running out tells
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields is None:
        return True
    if fields[0] in ("Z", "X"):
        return False
    return not (start and len(fields) > 19 and fields[19] != start)


class RetentionBusy(Exception):
    """Another retention run holds the lease."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run did (the full statement comes from `gateway.lifecycle.facts.destruction_facts`)."""

    run_id: str
    status: str
    participants: int
    keys_destroyed: int
    records_deleted: int
    skipped_on_hold: int  # participants a hold set after planning protected
    wal_checkpointed: bool | None  # SQLite: whether the WAL was truncated; None on PostgreSQL
    epochs_destroyed: tuple[EpochDestroyed, ...] = ()  # key epochs destroyed after the keys (backups too)


def live_keys(db: Database, policy: CompiledPolicy) -> Iterator[LiveKey]:
    """Yield every data key that still exists, with its participant's region (and last write where needed)."""
    recorded = [c for c, r in rules_by_category(policy).items() if r.trigger is RetentionTrigger.RECORDED]
    last_written: dict[tuple[str, str], datetime] = {}
    with db.read.connect() as conn:
        if recorded:
            rows = conn.execute(
                select(records.c.participant_id, records.c.category, func.max(records.c.written_at))
                .where(records.c.category.in_(recorded))
                .group_by(records.c.participant_id, records.c.category)
            )
            last_written = {(r[0], r[1]): r[2] for r in rows}
        query = (
            select(data_keys.c.participant_id, data_keys.c.category, participants.c.region)
            .join(participants, participants.c.id == data_keys.c.participant_id)
            .where(data_keys.c.wrapped_key.is_not(None))
        )
        for row in conn.execute(query):
            yield LiveKey(
                row.participant_id, row.region, row.category, last_written.get((row.participant_id, row.category))
            )


class RetentionRunner:
    def __init__(
        self,
        db: Database,
        audit: AuditWriter,
        clock: Clock,
        policy: Callable[[], CompiledPolicy],
        audit_timeout: float = 30.0,
        keys: DataKeyWrapper | None = None,
        heartbeat_seconds: float = 30.0,
        heartbeat_grace_seconds: float = 120.0,
        wall: Clock | None = None,
    ) -> None:
        self.db = db
        # Without the key store (tests of the plan alone) no epoch is destroyed: backups keep old keys.
        self.epochs = EpochShredder(db, keys, clock, policy) if keys is not None else None
        self.audit = audit
        self.clock = clock
        self.policy = policy
        self.audit_timeout = audit_timeout
        self.holder_id = holder_identity()
        self.after_step: Step = lambda step: None
        # Liveness is real time whatever the run's clock says: a rehearsal's clock may stand still.
        self.wall: Clock = wall or SystemClock()
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_grace = timedelta(seconds=heartbeat_grace_seconds)
        self._lost = threading.Event()  # set when another run took the lease over from this one

    # -- planning ------------------------------------------------------------------------------------

    def plan(self, as_of: datetime | None = None) -> RetentionPlan:
        """Return what is due as of `as_of` (default: now) and what is kept and why; changes nothing."""
        policy = self.policy()
        with self.db.read.connect() as conn:
            holds = holds_by_participant(conn)
        planned = plan(policy, live_keys(self.db, policy), holds, as_of or self.clock.now())
        if planned.due:
            self._warn_without_last_measurement(policy, planned)
        return planned

    def _warn_without_last_measurement(self, policy: CompiledPolicy, planned: RetentionPlan) -> None:
        """Warn when data falls due of a covenant whose last results measurement was never taken."""
        from gateway.monitor.due import missing_measurements

        regions = {d.region for d in planned.due}
        covenants = {c.id for c in policy.covenants.values() if c.regions & regions}
        missing = missing_measurements(self.db, policy, planned.as_of, covenants=covenants)
        if missing:
            log.warning(
                "retention.last_measurement_missing",
                covenants=[m.covenant_id for m in missing],
                hint="take the last results measurement first: gateway monitor last-measurement",
            )

    # -- the lease -------------------------------------------------------------------------------------

    def _lease(self, take: bool) -> None:
        now = self.clock.now()
        state = lifecycle_state.c
        with self.db.write.begin() as conn:
            if take:
                free = or_(state.retention_holder.is_(None), state.retention_lease_until < now)
                mine = state.retention_holder == self.holder_id
                taken = conn.execute(
                    update(lifecycle_state)
                    .where(state.id == 1, or_(free, mine))
                    .values(
                        retention_holder=self.holder_id,
                        retention_lease_until=now + LEASE,
                        retention_heartbeat_at=self.wall.now(),
                    )
                ).rowcount
                if taken != 1:
                    self._take_from_dead_holder(conn, now)
            else:
                conn.execute(
                    update(lifecycle_state)
                    .where(state.id == 1, state.retention_holder == self.holder_id)
                    .values(retention_holder=None, retention_lease_until=None, retention_heartbeat_at=None)
                )

    def _take_from_dead_holder(self, conn: Any, now: datetime) -> None:
        """Take the lease from a holder whose process is gone or whose heartbeat is stale; raise
        RetentionBusy while it lives."""
        state = lifecycle_state.c
        row = conn.execute(
            select(state.retention_holder, state.retention_heartbeat_at).where(state.id == 1)
        ).one_or_none()
        if row is not None and row.retention_holder is not None:
            holder, beat = row.retention_holder, row.retention_heartbeat_at
            reason = None
            if not holder_alive(holder):
                reason = "holder_gone"
            elif beat is not None and beat < self.wall.now() - self.heartbeat_grace:
                reason = "heartbeat_stale"
            if reason is not None:
                taken = conn.execute(
                    update(lifecycle_state)
                    .where(state.id == 1, state.retention_holder == holder)
                    .values(
                        retention_holder=self.holder_id,
                        retention_lease_until=now + LEASE,
                        retention_heartbeat_at=self.wall.now(),
                    )
                ).rowcount
                if taken == 1:
                    log.warning("retention.lease.taken_over", reason=reason, holder=holder)
                    return
        raise RetentionBusy("another retention run holds the lease; try again later")

    def heartbeat(self) -> bool:
        """Renew this run's heartbeat; return False (and remember it) when another run has taken the lease."""
        state = lifecycle_state.c
        with self.db.write.begin() as conn:
            renewed = conn.execute(
                update(lifecycle_state)
                .where(state.id == 1, state.retention_holder == self.holder_id)
                .values(retention_heartbeat_at=self.wall.now())
            ).rowcount
        if renewed != 1:
            self._lost.set()
        return renewed == 1

    @contextlib.contextmanager
    def _beating(self) -> Iterator[None]:
        """Renew the heartbeat every `heartbeat_seconds` from a thread while the body runs."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_seconds):
                try:
                    if not self.heartbeat():
                        log.error("retention.lease.lost", holder=self.holder_id)
                        return
                except Exception as exc:  # the store is away for a moment: the next beat tries again
                    log.warning("retention.heartbeat.failed", error=type(exc).__name__)

        thread = threading.Thread(target=beat, name="retention-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    # -- the run -----------------------------------------------------------------------------------------

    def run(
        self,
        actor: Actor,
        authority: str,
        as_of: datetime | None = None,
        progress: Progress | None = None,
        batch: int = 200,
    ) -> RunOutcome:
        """Destroy what is due as of `as_of` (default: now); return what was done.

        `batch` participants share one transaction: each batch is destroyed, or not at all, so an
        interruption loses at most the batch in flight, which the next run destroys (batch=1: one
        transaction per participant).
        """
        self._lease(True)
        self._lost.clear()
        try:
            with self._beating():
                return self._run_holding(actor, authority, as_of, progress, batch)
        finally:
            self._lease(False)

    def _run_holding(
        self, actor: Actor, authority: str, as_of: datetime | None, progress: Progress | None, batch: int
    ) -> RunOutcome:
        self._log_unlogged()
        self._close_abandoned()
        outcome = self._run(actor, authority, as_of, progress, max(1, batch))
        if self.epochs is None:
            return outcome
        epochs = self.epochs.destroy_closable(outcome.run_id, as_of or self.clock.now())
        if epochs:
            self._record_epochs(outcome.run_id, epochs)
            self.checkpoint_wal()  # the re-wrapped keys' old forms leave the WAL as well
        return replace(outcome, epochs_destroyed=tuple(epochs))

    def _record_epochs(self, run_id: str, epochs: list[EpochDestroyed]) -> None:
        """Add the key epochs the run destroyed to its summary (the table `key_epochs` holds them too)."""
        with self.db.write.begin() as conn:
            raw = conn.execute(select(retention_runs.c.summary).where(retention_runs.c.id == run_id)).scalar_one()
            summary = orjson.loads(raw)
            summary["epochs_destroyed"] = [
                {"epoch": e.epoch_id, "destroyed_at": iso(e.destroyed_at), "keys_moved": e.keys_moved} for e in epochs
            ]
            conn.execute(
                update(retention_runs)
                .where(retention_runs.c.id == run_id)
                .values(summary=orjson.dumps(summary).decode())
            )

    def _run(
        self, actor: Actor, authority: str, as_of: datetime | None, progress: Progress | None, batch: int
    ) -> RunOutcome:
        policy = self.policy()
        now = self.clock.now()
        as_of = as_of or now
        planned = self.plan(as_of)
        by_participant: dict[str, list[DueItem]] = defaultdict(list)
        for item in planned.due:
            by_participant[item.participant_id].append(item)
        run_id = str(uuid.uuid4())
        summary = _summary(policy, planned, actor)
        with self.db.write.begin() as conn:
            conn.execute(
                insert(retention_runs).values(
                    id=run_id,
                    started_at=now,
                    as_of=as_of,
                    authority=authority,
                    acting_user=actor.acting_user,
                    status="running",
                    summary=orjson.dumps(summary).decode(),
                    destroyed_keys=0,
                    deleted_records=0,
                )
            )
        log.info("retention.run.started", run_id=run_id, participants=len(by_participant), keys=len(planned.due))
        keys = deleted = done = held_late = participants_destroyed = 0
        status = "interrupted"
        pending: list[_Queued] = []
        try:
            total = len(by_participant)
            groups = list(by_participant.values())
            for first in range(0, total, batch):
                if self._lost.is_set():
                    raise RetentionBusy("another retention run took this run's lease over; it stops here")
                chunk = groups[first : first + batch]
                destroyed, held = self._destroy_batch(run_id, chunk)
                self.after_step("destroyed")
                done += len(chunk)
                held_late += len(held)
                participants_destroyed += len(destroyed)
                entries = []
                for pid, what in destroyed.items():
                    region = by_participant[pid][0].region
                    entries.append(self._entry(policy, actor, run_id, authority, region, pid, what))
                    keys += len(what)
                    deleted += sum(n for _, n, _ in what)
                # One batched call: the chunk's entries are committed together, consecutively, or none.
                if entries:
                    logged = [(run_id, pid) for pid in destroyed]
                    pending.append((logged, self.audit.submit_many(entries, self.clock.now())))
                self._settle(pending)
                self._count(run_id, keys, deleted)
                if progress is not None:
                    progress(done, total)
            status = "completed"
        finally:
            if pending:  # interrupted: still record the entries already queued (the rest: next run)
                with contextlib.suppress(Exception):
                    self._settle(pending)
            with self.db.write.begin() as conn:
                conn.execute(
                    update(retention_runs)
                    .where(retention_runs.c.id == run_id)
                    .values(status=status, finished_at=self.clock.now(), destroyed_keys=keys, deleted_records=deleted)
                )
            checkpointed = self.checkpoint_wal()
            log.info("retention.run.finished", run_id=run_id, status=status, keys=keys, records=deleted)
        return RunOutcome(run_id, status, participants_destroyed, keys, deleted, held_late, checkpointed)

    def _destroy_batch(
        self, run_id: str, groups: list[list[DueItem]]
    ) -> tuple[dict[str, list[tuple[str, int, str]]], set[str]]:
        """Destroy the due keys of some participants in one transaction.

        Return (participant -> [(category, records deleted, rule)], participants skipped for a hold).
        """
        due = {(i.participant_id, i.category): i for items in groups for i in items}
        pids = sorted({pid for pid, _ in due})
        now = self.clock.now()
        destroyed: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        with self.db.write.begin() as conn:
            # A hold set after planning keeps the participant: destruction stays suspended.
            held = set(
                conn.execute(
                    select(legal_holds.c.participant_id).where(
                        legal_holds.c.participant_id.in_(pids), legal_holds.c.lifted_at.is_(None)
                    )
                ).scalars()
            )
            live_query = select(data_keys.c.participant_id, data_keys.c.category, data_keys.c.epoch_id).where(
                data_keys.c.participant_id.in_([p for p in pids if p not in held]),
                data_keys.c.wrapped_key.is_not(None),
            )
            if not self.db.is_sqlite:
                live_query = live_query.with_for_update()
            epochs: dict[tuple[str, str], str | None] = {}
            for r in conn.execute(live_query):
                if (r.participant_id, r.category) in due:
                    epochs[(r.participant_id, r.category)] = r.epoch_id
            live = list(epochs)
            if not live:
                return {}, held
            by_category: dict[str, list[str]] = defaultdict(list)
            for pid, category in live:
                by_category[category].append(pid)
            stats: dict[tuple[str, str], Any] = {}
            # One statement per category (not per pair): the few categories repeat across participants.
            for category, members in by_category.items():
                in_records = (records.c.category == category, records.c.participant_id.in_(members))
                for r in conn.execute(
                    select(
                        records.c.participant_id,
                        func.count().label("n"),
                        func.min(records.c.written_at).label("first"),
                        func.max(records.c.written_at).label("last"),
                    )
                    .where(*in_records)
                    .group_by(records.c.participant_id)
                ):
                    stats[(r.participant_id, category)] = r
                conn.execute(
                    update(data_keys)
                    .where(data_keys.c.category == category, data_keys.c.participant_id.in_(members))
                    .values(wrapped_key=None, destroyed_at=now)
                )
                conn.execute(delete(records).where(*in_records))
            rows = []
            for pair in live:
                item, stat = due[pair], stats.get(pair)
                rows.append(
                    {
                        "participant_id": item.participant_id,
                        "category": item.category,
                        "run_id": run_id,
                        "region": item.region,
                        "rule_id": item.rule_id,
                        "trigger_at": item.trigger_at,
                        "due_at": item.due_at,
                        "destroyed_at": now,
                        "records_deleted": stat.n if stat else 0,
                        "period_from": stat.first if stat else None,
                        "period_until": stat.last if stat else None,
                        "audit_seq": None,
                        "epoch_id": epochs[pair],
                    }
                )
                destroyed[item.participant_id].append((item.category, stat.n if stat else 0, item.rule_id))
            conn.execute(insert(retention_destructions), rows)
        return dict(destroyed), held

    def _entry(
        self,
        policy: CompiledPolicy,
        actor: Actor,
        run_id: str,
        authority: str,
        region: str,
        pid: str,
        destroyed: list[tuple[str, int, str]],
    ) -> dict[str, Any]:
        return lifecycle_entry(
            "retention.destroyed",
            self.clock.now(),
            actor,
            policy.version,
            "retention_due",
            participant=pid,
            region=region,
            categories=sorted(c for c, _, _ in destroyed),
            rule_ids=sorted({r for _, _, r in destroyed}),
            records_deleted=sum(n for _, n, _ in destroyed),
            run_id=run_id,
            method=METHOD,
            authority=authority,
        )

    def _settle(self, pending: list[_Queued], known: dict[tuple[str, str], int] | None = None) -> None:
        """Wait for the queued audit entries and record their sequence numbers on the destruction rows.

        `known`: (run, participant) -> seq of entries already in the log, recorded the same way.
        """
        if not pending and not known:
            return
        try:
            done = [
                (run_id, pid, appended.seq)
                for logged, future in pending
                for (run_id, pid), appended in zip(logged, future.result(self.audit_timeout), strict=True)
            ]
        except Exception as exc:
            # The destructions stand; their entries are appended by the next run (`_log_unlogged`).
            raise AuditUnavailable(f"retention audit entries not confirmed: {type(exc).__name__}") from exc
        finally:
            pending.clear()
        done += [(run_id, pid, seq) for (run_id, pid), seq in (known or {}).items()]
        self.after_step("logged")
        d = retention_destructions.c
        statement = (
            update(retention_destructions)
            .where(d.run_id == bindparam("run"), d.participant_id == bindparam("pid"), d.audit_seq.is_(None))
            .values(audit_seq=bindparam("seq"))
        )
        with self.db.write.begin() as conn:
            conn.execute(statement, [{"run": run_id, "pid": pid, "seq": seq} for run_id, pid, seq in done])

    def _count(self, run_id: str, keys: int, deleted: int) -> None:
        """Record the run's progress and renew its lease (a long run keeps others out)."""
        state = lifecycle_state.c
        with self.db.write.begin() as conn:
            conn.execute(
                update(retention_runs)
                .where(retention_runs.c.id == run_id)
                .values(destroyed_keys=keys, deleted_records=deleted)
            )
            renewed = conn.execute(
                update(lifecycle_state)
                .where(state.id == 1, state.retention_holder == self.holder_id)
                .values(retention_lease_until=self.clock.now() + LEASE, retention_heartbeat_at=self.wall.now())
            ).rowcount
        if renewed != 1:
            self._lost.set()

    def _log_unlogged(self) -> int:
        """Append the audit entries an interrupted run did not get to; return how many participants.

        A run killed after its entries were committed but before their sequence numbers were written
        back left them in the log already: those are found by (run, participant) and not appended again.
        """
        with self.db.read.connect() as conn:
            rows = conn.execute(
                select(retention_destructions, retention_runs.c.authority, retention_runs.c.acting_user)
                .join(retention_runs, retention_runs.c.id == retention_destructions.c.run_id)
                .where(retention_destructions.c.audit_seq.is_(None))
            ).all()
        grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for row in rows:
            grouped[(row.run_id, row.participant_id)].append(row)
        if not grouped:
            return 0
        known = self._already_logged(set(grouped))
        policy = self.policy()
        logged: list[tuple[str, str]] = []
        entries = []
        for (run_id, pid), group in grouped.items():
            if (run_id, pid) in known:
                continue
            first = group[0]
            actor = Actor(None, first.acting_user, "system")
            destroyed = [(r.category, r.records_deleted, r.rule_id) for r in group]
            entry = self._entry(policy, actor, run_id, first.authority, first.region, pid, destroyed)
            entry["late"] = True  # appended by a later run after an interruption; destroyed_at says when
            entry["destroyed_at"] = iso(first.destroyed_at)
            entries.append(entry)
            logged.append((run_id, pid))
        queued = [(logged, self.audit.submit_many(entries, self.clock.now()))] if entries else []
        self._settle(queued, known)
        log.warning("retention.audit.backfilled", participants=len(grouped) - len(known), found_logged=len(known))
        return len(grouped) - len(known)

    def _already_logged(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Return (run, participant) -> seq of the `retention.destroyed` entries among `wanted` already logged."""
        found: dict[tuple[str, str], int] = {}
        pids = sorted({pid for _, pid in wanted})
        a = audit_entries.c
        with self.db.read.connect() as conn:
            for first in range(0, len(pids), 500):
                rows = conn.execute(
                    select(a.seq, a.entry).where(
                        a.participant_id.in_(pids[first : first + 500]),
                        a.entry.like('%"event":"retention.destroyed"%'),
                    )
                )
                for seq, text in rows:
                    entry = orjson.loads(text)
                    key = (entry.get("run_id"), entry.get("participant"))
                    if entry.get("event") == "retention.destroyed" and key in wanted:
                        found.setdefault(key, int(seq))
        return found

    def _close_abandoned(self) -> list[str]:
        """Close the runs a dead process left `running` as `interrupted`, with the counts their rows state.

        Called while holding the lease, before this run starts: any run still `running` has no live process.
        Its end is its last destruction (or its start when it destroyed nothing): the last moment known.
        """
        d = retention_destructions.c
        closed: list[str] = []
        with self.db.write.begin() as conn:
            runs = conn.execute(
                select(retention_runs.c.id, retention_runs.c.started_at).where(retention_runs.c.status == "running")
            ).all()
            for run_id, started_at in runs:
                keys, deleted, last = conn.execute(
                    select(func.count(), func.coalesce(func.sum(d.records_deleted), 0), func.max(d.destroyed_at)).where(
                        d.run_id == run_id
                    )
                ).one()
                conn.execute(
                    update(retention_runs)
                    .where(retention_runs.c.id == run_id, retention_runs.c.status == "running")
                    .values(
                        status="interrupted",
                        finished_at=last or started_at,
                        destroyed_keys=int(keys),
                        deleted_records=int(deleted),
                    )
                )
                closed.append(run_id)
                log.warning("retention.run.closed_abandoned", run_id=run_id, keys=int(keys), records=int(deleted))
        return closed

    def checkpoint_wal(self) -> bool | None:
        """On SQLite, copy the WAL into the database and truncate it; return whether it fully succeeded."""
        if not self.db.is_sqlite:
            return None
        raw = self.db.write.raw_connection()
        try:
            busy, _, _ = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()  # type: ignore[union-attr]
        finally:
            raw.close()
        if busy:
            log.warning("retention.wal_checkpoint.busy")
        return not busy


def _summary(policy: CompiledPolicy, planned: RetentionPlan, actor: Actor) -> dict[str, Any]:
    used = {d.rule_id for d in planned.due}
    return {
        "policy_version": policy.version,
        "lifecycle_version": policy.lifecycle_version,
        "organisation": actor.organisation,
        "rules": [
            {
                "rule_id": r.id,
                "applies_to": r.applies_to,
                "trigger": r.trigger.value,
                "duration": r.duration,
                "legal_source": r.legal_source,
                "suggestion": r.suggestion,
            }
            for r in policy.config.retention
            if r.id in used
        ],
        "kept": [_kept_json(k) for k in planned.kept_groups],
    }


def _kept_json(k: KeptGroup) -> dict[str, Any]:
    return {
        "category": k.category,
        "reason": k.reason.value,
        "rule_id": k.rule_id,
        "keys": k.keys,
        "participants": k.participants,
        "next_due": iso(k.next_due) if k.next_due else None,
    }
