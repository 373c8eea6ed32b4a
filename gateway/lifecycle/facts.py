"""The facts the evidence documents state: pure data, read from the configuration, the database and the log.

The signed revocation report and the destruction record (vernietigingsverklaring) are built from
these; the jurists' pages list them. Every function reads, none writes. Datetimes are aware (UTC).

- `covenant_end_facts(db, policy, covenant_id)`: what was in force, the end moment (configured or
  revoked), the mandates, every attempt after the end as the audit log holds it, the legal holds kept
  and why, the checkpoints around the end.
- `destruction_facts(db, run_id)` (`DestructionBatch`): what a retention run destroyed, of which period,
  on which ground, how, when, on whose authority, and what it kept.
- `covenant_states`, `mandate_facts`, `legal_holds`, `retention_runs`: lists for the jurists' pages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select

from gateway.lifecycle import repository as repo
from gateway.lifecycle.model import CovenantRevocation, LegalHold, MandateWithdrawal
from gateway.policies.compiled import CompiledPolicy
from gateway.retention.epochs import closes_at
from gateway.retention.model import (
    METHOD,
    DestroyedCategory,
    DestructionBatch,
    DestructionGround,
    EpochFact,
    KeepReason,
    KeptGroup,
)
from gateway.store.db import Database
from gateway.store.tables import (
    audit_checkpoints,
    audit_entries,
    data_keys,
    key_epochs,
    participants,
    retention_destructions,
    retention_runs,
)

__all__ = [
    "AttemptAfterEnd",
    "CheckpointFact",
    "CovenantEndFacts",
    "CovenantState",
    "DestroyedCategory",
    "DestructionBatch",
    "DestructionGround",
    "HoldKept",
    "KeptGroup",
    "MandateFact",
    "PartyFact",
    "RunSummary",
    "covenant_end_facts",
    "covenant_states",
    "destruction_facts",
    "legal_holds",
    "mandate_facts",
    "retention_runs_list",
]


def _ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class PartyFact:
    organisation: str
    name: str
    kind: str  # gemeente | rijkspartner | ngo
    gdpr_role: str


@dataclass(frozen=True, slots=True)
class MandateFact:
    """A mandate decision and where it stands."""

    id: str
    reference: str
    mandator: str
    mandataries: tuple[str, ...]
    covenants: tuple[str, ...]
    rules: tuple[str, ...]  # the sharing rules whose permissions it carries
    granted_at: datetime
    configured_end: datetime | None  # valid_until + 1 s in the configuration, if any
    withdrawal: MandateWithdrawal | None  # the jurist's recorded withdrawal, if any
    effective_end: datetime | None  # the earlier of the two (None: open-ended, still in force)
    in_force: bool  # at the `as_of` moment asked for


@dataclass(frozen=True, slots=True)
class CovenantState:
    """One covenant and where it stands at `as_of` (for lists)."""

    id: str
    title: str
    regions: tuple[str, ...]
    valid_from: datetime
    configured_end: datetime  # the first instant no longer in force, as configured
    revocation: CovenantRevocation | None
    effective_end: datetime  # the earlier of the configured end and the revocation
    state: str  # not_yet_in_force | in_force | revocation_pending | ended | revoked
    mandate_reference: str | None


@dataclass(frozen=True, slots=True)
class AttemptAfterEnd:
    """One request by a party of the covenant, concerning its regions, at or after the end."""

    seq: int
    recorded_at: datetime
    event: str
    organisation: str | None
    client_id: str | None
    role: str | None
    purpose: str | None
    decision: str  # permit | deny
    reason: str
    participant_id: str | None
    region: str | None
    covenants: tuple[str, ...]  # the covenants a permit was served under
    rule_ids: tuple[str, ...]
    # denied | served_under_other_covenant | legal_hold_procedure | served_under_this_covenant (never expected)
    outcome: str


@dataclass(frozen=True, slots=True)
class HoldKept:
    """A legal hold on a participant in the covenant's regions: why its data was kept."""

    hold: LegalHold
    categories_kept: tuple[str, ...]  # categories whose data key still exists
    why: str


@dataclass(frozen=True, slots=True)
class CheckpointFact:
    tree_size: int
    root_hash: str  # hex
    signed_at: datetime
    key_id: str
    note: str  # the signed checkpoint text, exactly as published


@dataclass(frozen=True, slots=True)
class CovenantEndFacts:
    """What a revocation report states about one covenant's end."""

    as_of: datetime
    covenant_id: str
    title: str
    parties: tuple[PartyFact, ...]
    regions: tuple[str, ...]
    valid_from: datetime
    configured_end: datetime
    revocation: CovenantRevocation | None
    effective_end: datetime
    ended: bool  # at `as_of`
    mandate_reference: str | None
    mandates: tuple[MandateFact, ...]
    rule_ids: tuple[str, ...]  # the sharing rules that applied under it
    rules_after_end_under_hold: tuple[str, ...]  # of those, the ones a legal hold keeps applicable
    attempts_after_end: tuple[AttemptAfterEnd, ...]
    attempts_denied: int
    attempts_served_under_other_covenants: int
    attempts_for_legal_hold_procedure: int
    attempts_served_under_this_covenant: int  # must be 0: a permit under the covenant after its end
    holds_kept: tuple[HoldKept, ...]
    last_seq_before_end: int  # the last audit entry recorded before the end (0: none)
    checkpoint_before_end: CheckpointFact | None  # the last signed checkpoint at or before the end
    checkpoint_after_end: CheckpointFact | None  # the first one that covers the last entry before the end
    policy_version: str
    lifecycle_version: str | None


def _state(cov_starts: float, configured_end: float, effective_end: float, revoked: bool, now: float) -> str:
    if now < cov_starts:
        return "not_yet_in_force"
    if now < effective_end:
        return "revocation_pending" if revoked and effective_end < configured_end else "in_force"
    return "revoked" if revoked and effective_end < configured_end else "ended"


def covenant_states(policy: CompiledPolicy, as_of: datetime) -> tuple[CovenantState, ...]:
    """Return every covenant with its configured and effective end, and its state at `as_of`."""
    now = as_of.timestamp()
    out = []
    for cov in policy.covenants.values():
        configured = cov.source.ends_at.timestamp()
        revocation = policy.lifecycle.revocations.get(cov.id)
        out.append(
            CovenantState(
                id=cov.id,
                title=cov.source.title,
                regions=tuple(sorted(cov.regions)),
                valid_from=_ts(cov.starts_ts),
                configured_end=_ts(configured),
                revocation=revocation,
                effective_end=_ts(cov.ends_ts),
                state=_state(cov.starts_ts, configured, cov.ends_ts, revocation is not None, now),
                mandate_reference=cov.source.mandate,
            )
        )
    return tuple(out)


def mandate_facts(policy: CompiledPolicy, as_of: datetime) -> tuple[MandateFact, ...]:
    """Return every mandate with its grant, configured end, recorded withdrawal and state at `as_of`."""
    out = []
    for mandate in policy.mandates.values():
        ends = policy.mandate_ends(mandate.id)
        out.append(
            MandateFact(
                id=mandate.id,
                reference=mandate.reference,
                mandator=mandate.mandator,
                mandataries=mandate.mandataries,
                covenants=mandate.covenants,
                rules=mandate.rules,
                granted_at=mandate.starts_at.astimezone(UTC),
                configured_end=mandate.ends_at.astimezone(UTC) if mandate.ends_at else None,
                withdrawal=policy.lifecycle.withdrawals.get(mandate.id),
                effective_end=None if math.isinf(ends) else _ts(ends),
                in_force=mandate.starts_at.timestamp() <= as_of.timestamp() < ends,
            )
        )
    return tuple(out)


def legal_holds(db: Database, active_only: bool = False) -> list[LegalHold]:
    """Return the legal holds, oldest first (all, or only the active ones)."""
    return repo.holds(db, active_only=active_only)


def _moment_column(db: Database) -> Any:
    """Return `audit_entries.recorded_at` in a form that compares by instant on both backends.

    On SQLite the column is text, and writers do not all store one format (with or without fraction
    and offset); `datetime()` normalises each to UTC 'YYYY-MM-DD HH:MM:SS' (whole seconds, as ends are).
    """
    return func.datetime(audit_entries.c.recorded_at) if db.is_sqlite else audit_entries.c.recorded_at


def _moment(db: Database, at: datetime) -> Any:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if db.is_sqlite else at


def _checkpoint(row: Any) -> CheckpointFact | None:
    if row is None:
        return None
    return CheckpointFact(int(row.tree_size), bytes(row.root_hash).hex(), row.signed_at, row.key_id, row.note)


def _attempt_outcome(entry: dict[str, Any], covenant_id: str, legal_purposes: set[str]) -> str:
    if entry.get("decision") != "permit":
        return "denied"
    served = entry.get("covenants") or []
    if covenant_id not in served:
        return "served_under_other_covenant"
    if entry.get("purpose") in legal_purposes:
        return "legal_hold_procedure"
    return "served_under_this_covenant"


def covenant_end_facts(
    db: Database, policy: CompiledPolicy, covenant_id: str, as_of: datetime | None = None
) -> CovenantEndFacts:
    """Return what a revocation report states about `covenant_id` (pass the effective policy).

    `as_of` (default: now in UTC) bounds the attempts read from the audit log.
    """
    as_of = as_of or datetime.now(UTC)
    cov = policy.covenants[covenant_id]
    end = _ts(cov.ends_ts)
    parties = {p.organisation: p for p in cov.source.parties}
    orgs = policy.organisations
    legal_purposes = {p.id for p in policy.purposes.values() if p.legal_procedure}
    rules = sorted({r.id for group in policy.rules_by_purpose_op.values() for r in group if covenant_id in r.covenants})
    after_hold = sorted(
        {
            r.id
            for g in policy.rules_by_purpose_op.values()
            for r in g
            if covenant_id in r.covenants and r.after_end_under_hold
        }
    )
    attempts: list[AttemptAfterEnd] = []
    with db.read.connect() as conn:
        recorded = _moment_column(db)
        last_before = conn.execute(select(func.max(audit_entries.c.seq)).where(recorded < _moment(db, end))).scalar()
        region_of = participants.c.region
        query = (
            select(audit_entries.c.seq, audit_entries.c.recorded_at, audit_entries.c.entry, region_of)
            .outerjoin(participants, participants.c.id == audit_entries.c.participant_id)
            .where(
                recorded >= _moment(db, end),
                recorded <= _moment(db, as_of),
                audit_entries.c.organisation.in_(sorted(parties)),
            )
            .order_by(audit_entries.c.seq)
        )
        for row in conn.execute(query):
            entry = orjson.loads(row.entry)
            event = str(entry.get("event", ""))
            # Requests decided by the gate, and requests refused before it (tokens, scope, headers).
            refused_before = event.startswith("auth.") and entry.get("decision") == "deny"
            if not event.startswith("exchange.") and not refused_before:
                continue
            region = row.region or entry.get("region")
            if region is not None and region not in cov.regions:
                continue
            attempts.append(
                AttemptAfterEnd(
                    seq=int(row.seq),
                    recorded_at=row.recorded_at,
                    event=str(entry.get("event")),
                    organisation=entry.get("organisation"),
                    client_id=entry.get("client_id"),
                    role=entry.get("role"),
                    purpose=entry.get("purpose"),
                    decision=str(entry.get("decision")),
                    reason=str(entry.get("reason")),
                    participant_id=entry.get("participant"),
                    region=region,
                    covenants=tuple(entry.get("covenants") or ()),
                    rule_ids=tuple(entry.get("rule_ids") or ()),
                    outcome=_attempt_outcome(entry, covenant_id, legal_purposes),
                )
            )
        before = conn.execute(
            select(audit_checkpoints)
            .where(audit_checkpoints.c.signed_at <= end)
            .order_by(audit_checkpoints.c.tree_size.desc())
            .limit(1)
        ).first()
        after = conn.execute(
            select(audit_checkpoints)
            .where(audit_checkpoints.c.tree_size >= int(last_before or 0), audit_checkpoints.c.signed_at >= end)
            .order_by(audit_checkpoints.c.tree_size)
            .limit(1)
        ).first()
        held_ids = [
            h
            for h in repo.holds(db)
            if h.region in cov.regions and (h.active or (h.lifted_at is not None and h.lifted_at >= end))
        ]
        live: dict[str, list[str]] = defaultdict(list)
        if held_ids:
            for pid, cat in conn.execute(
                select(data_keys.c.participant_id, data_keys.c.category).where(
                    data_keys.c.participant_id.in_([h.participant_id for h in held_ids]),
                    data_keys.c.wrapped_key.is_not(None),
                )
            ):
                live[pid].append(cat)
    holds_kept = tuple(
        HoldKept(
            hold=h,
            categories_kept=tuple(sorted(live.get(h.participant_id, ()))),
            why=(
                f"{h.reason.value} ({h.case_reference}) is running: destruction suspended and access for the legal "
                "procedure only (AVG art. 17(3)(e), art. 18(1)(c))"
                if h.active
                else f"{h.reason.value} ({h.case_reference}) was decided on {h.lifted_at:%Y-%m-%d}: the retention "
                "period restarted then"
            ),
        )
        for h in held_ids
    )
    outcomes = [a.outcome for a in attempts]
    return CovenantEndFacts(
        as_of=as_of.astimezone(UTC),
        covenant_id=covenant_id,
        title=cov.source.title,
        parties=tuple(
            PartyFact(
                p, orgs[p].name if p in orgs else p, orgs[p].kind.value if p in orgs else "", parties[p].gdpr_role.value
            )
            for p in parties
        ),
        regions=tuple(sorted(cov.regions)),
        valid_from=_ts(cov.starts_ts),
        configured_end=cov.source.ends_at.astimezone(UTC),
        revocation=policy.lifecycle.revocations.get(covenant_id),
        effective_end=end,
        ended=as_of.timestamp() >= cov.ends_ts,
        mandate_reference=cov.source.mandate,
        mandates=tuple(m for m in mandate_facts(policy, as_of) if covenant_id in m.covenants),
        rule_ids=tuple(rules),
        rules_after_end_under_hold=tuple(after_hold),
        attempts_after_end=tuple(attempts),
        attempts_denied=outcomes.count("denied"),
        attempts_served_under_other_covenants=outcomes.count("served_under_other_covenant"),
        attempts_for_legal_hold_procedure=outcomes.count("legal_hold_procedure"),
        attempts_served_under_this_covenant=outcomes.count("served_under_this_covenant"),
        holds_kept=holds_kept,
        last_seq_before_end=int(last_before or 0),
        checkpoint_before_end=_checkpoint(before),
        checkpoint_after_end=_checkpoint(after),
        policy_version=policy.version,
        lifecycle_version=policy.lifecycle_version,
    )


# -- destruction -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One retention run, for lists."""

    run_id: str
    status: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    authority: str
    acting_user: str
    keys_destroyed: int
    records_deleted: int


def retention_runs_list(db: Database) -> list[RunSummary]:
    """Return every retention run, newest first."""
    with db.read.connect() as conn:
        rows = conn.execute(select(retention_runs).order_by(retention_runs.c.started_at.desc())).all()
    return [
        RunSummary(
            r.id,
            r.status,
            r.as_of,
            r.started_at,
            r.finished_at,
            r.authority,
            r.acting_user,
            r.destroyed_keys,
            r.deleted_records,
        )
        for r in rows
    ]


def destruction_facts(db: Database, policy: CompiledPolicy, run_id: str) -> DestructionBatch:
    """Return what retention run `run_id` destroyed and kept, as the destruction record states it."""
    with db.read.connect() as conn:
        run = conn.execute(select(retention_runs).where(retention_runs.c.id == run_id)).one()
        d = retention_destructions.c
        groups = conn.execute(
            select(
                d.category,
                d.rule_id,
                func.count().label("keys"),
                func.sum(d.records_deleted).label("records"),
                func.count(func.distinct(d.participant_id)).label("participants"),
                func.min(d.period_from).label("period_from"),
                func.max(d.period_until).label("period_until"),
            )
            .where(d.run_id == run_id)
            .group_by(d.category, d.rule_id)
            .order_by(d.category, d.rule_id)
        ).all()
        by_epoch = conn.execute(
            select(d.epoch_id, func.count().label("keys"), key_epochs.c.state, key_epochs.c.destroyed_at)
            .outerjoin(key_epochs, key_epochs.c.epoch_id == d.epoch_id)
            .where(d.run_id == run_id)
            .group_by(d.epoch_id, key_epochs.c.state, key_epochs.c.destroyed_at)
        ).all()
        totals = conn.execute(
            select(
                func.count(func.distinct(d.participant_id)),
                func.min(d.audit_seq),
                func.max(d.audit_seq),
                func.min(d.period_from),
                func.max(d.period_until),
            ).where(d.run_id == run_id)
        ).one()
    summary = orjson.loads(run.summary)
    categories = tuple(
        DestroyedCategory(
            category=g.category,
            category_name=policy.categories[g.category].name if g.category in policy.categories else g.category,
            rule_id=g.rule_id,
            keys_destroyed=int(g.keys),
            records_deleted=int(g.records or 0),
            participants=int(g.participants),
            period_from=_aware(g.period_from),
            period_until=_aware(g.period_until),
        )
        for g in groups
    )
    used = {c.rule_id for c in categories}
    grounds = tuple(
        DestructionGround(
            r["rule_id"], r["applies_to"], r["trigger"], r["duration"], r["legal_source"], r["suggestion"]
        )
        for r in summary.get("rules", [])
        if r["rule_id"] in used
    )
    kept = tuple(
        KeptGroup(
            k["category"],
            KeepReason(k["reason"]),
            k["rule_id"],
            k["keys"],
            k["participants"],
            datetime.fromisoformat(k["next_due"].replace("Z", "+00:00")) if k["next_due"] else None,
        )
        for k in summary.get("kept", [])
    )
    return DestructionBatch(
        run_id=run.id,
        status=run.status,
        as_of=run.as_of,
        started_at=run.started_at,
        finished_at=run.finished_at,
        authority=run.authority,
        acting_user=run.acting_user,
        organisation=summary.get("organisation"),
        method=METHOD,
        categories=categories,
        grounds=grounds,
        participants=int(totals[0] or 0),
        keys_destroyed=sum(c.keys_destroyed for c in categories),
        records_deleted=sum(c.records_deleted for c in categories),
        period_from=_aware(totals[3]),
        period_until=_aware(totals[4]),
        kept=kept,
        audit_seq_first=None if totals[1] is None else int(totals[1]),
        audit_seq_last=None if totals[2] is None else int(totals[2]),
        policy_version=str(summary.get("policy_version", policy.version)),
        epochs=tuple(
            _epoch_fact(e.epoch_id, int(e.keys), e.state, e.destroyed_at)
            for e in sorted(by_epoch, key=lambda r: (r.epoch_id is None, r.epoch_id or ""))
        ),
    )


def _epoch_fact(epoch_id: str | None, keys: int, state: str | None, destroyed_at: datetime | None) -> EpochFact:
    # Keys moved out of an epoch earlier were moved only as that epoch was being destroyed, so the epoch a
    # key was in when destroyed is the one that decides what older backups still open.
    if epoch_id is None:
        return EpochFact(None, keys, "legacy", None, None)
    expected = closes_at(epoch_id)
    return EpochFact(
        epoch_id,
        keys,
        state or "live",
        _aware(destroyed_at) if state == "destroyed" else None,
        None if state == "destroyed" or expected is None else expected.astimezone(UTC),
    )


def _aware(moment: datetime | None) -> datetime | None:
    """Return a moment from an aggregate as aware UTC (SQLite returns aggregates without the column type)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
