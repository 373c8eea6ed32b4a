"""What is due for destruction as of a moment: a pure function of the policy, the live keys and the holds.

The clock of a rule starts at its trigger:
- `covenant_end`: the effective end (configured end or revocation) of the covenants covering the
  participant's region, the latest of them (a successor covenant for the region keeps the data);
- `recorded`: when the category's latest record was written;
- other triggers (`case_closed`, `decision_final`, `provision_end`): the gateway holds no fact for
  them, so such keys are kept and listed as `trigger_unknown`.
A participant under an active legal hold is kept. Once every hold is lifted (the decision is final)
the clock restarts at the last lift. Archive rules keep permanently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.lifecycle.model import LegalHold
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.loader import add_duration
from gateway.policies.model import RetentionRule, RetentionTrigger
from gateway.retention.model import DueGroup, DueItem, KeepReason, KeptGroup, LiveKey, RetentionPlan


def region_ends(policy: CompiledPolicy) -> dict[str, datetime]:
    """Return, per region, the latest effective end of the covenants covering it (aware, in their zone)."""
    ends: dict[str, tuple[float, str]] = {}
    for cov in policy.covenants.values():
        for region in cov.regions:
            if region not in ends or cov.ends_ts > ends[region][0]:
                ends[region] = (cov.ends_ts, cov.source.timezone)
    return {r: datetime.fromtimestamp(ts, ZoneInfo(zone)) for r, (ts, zone) in ends.items()}


def rules_by_category(policy: CompiledPolicy) -> dict[str, RetentionRule]:
    """Return the retention rule of each data category (record kinds are not keys and are left out)."""
    return {r.applies_to: r for r in policy.config.retention if r.applies_to in policy.categories}


@dataclass
class _Tally:
    keys: int = 0
    participants: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, participant_id: str, moment: datetime | None) -> None:
        self.keys += 1
        self.participants.add(participant_id)
        if moment is not None:
            self.first = moment if self.first is None else min(self.first, moment)
            self.last = moment if self.last is None else max(self.last, moment)


def plan(
    policy: CompiledPolicy,
    keys: Iterable[LiveKey],
    holds: Mapping[str, Sequence[LegalHold]],
    as_of: datetime,
    zone: str = "Europe/Amsterdam",
) -> RetentionPlan:
    """Return what is due as of `as_of` (aware) and what is kept and why."""
    local = ZoneInfo(zone)
    rules = rules_by_category(policy)
    ends = region_ends(policy)
    last_lift: dict[str, datetime] = {}
    held: set[str] = set()
    for pid, hs in holds.items():
        if any(h.active for h in hs):
            held.add(pid)
        lifts = [h.lifted_at for h in hs if h.lifted_at is not None]
        if lifts:
            last_lift[pid] = max(lifts)

    due: list[DueItem] = []
    due_tally: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    kept_tally: dict[tuple[str, KeepReason, str | None], _Tally] = defaultdict(_Tally)
    for key in keys:
        rule = rules.get(key.category)
        if rule is None:
            kept_tally[(key.category, KeepReason.NO_RULE, None)].add(key.participant_id, None)
            continue
        if rule.action == "archive" or rule.duration is None:
            kept_tally[(key.category, KeepReason.ARCHIVE, rule.id)].add(key.participant_id, None)
            continue
        if rule.trigger is RetentionTrigger.COVENANT_END:
            trigger_at = ends.get(key.region)
            if trigger_at is None:
                kept_tally[(key.category, KeepReason.NO_COVENANT, rule.id)].add(key.participant_id, None)
                continue
        elif rule.trigger is RetentionTrigger.RECORDED and key.last_written_at is not None:
            trigger_at = key.last_written_at.astimezone(local)
        else:
            kept_tally[(key.category, KeepReason.TRIGGER_UNKNOWN, rule.id)].add(key.participant_id, None)
            continue
        lifted = last_lift.get(key.participant_id)
        restarted = lifted is not None and lifted > trigger_at
        start = lifted.astimezone(local) if restarted and lifted is not None else trigger_at
        due_at = add_duration(start, rule.duration)
        if key.participant_id in held:
            kept_tally[(key.category, KeepReason.ON_HOLD, rule.id)].add(key.participant_id, None)
        elif due_at > as_of:
            kept_tally[(key.category, KeepReason.NOT_DUE, rule.id)].add(key.participant_id, due_at)
        else:
            due.append(
                DueItem(
                    key.participant_id, key.region, key.category, rule.id, rule.trigger.value, start, due_at, restarted
                )
            )
            due_tally[(key.category, rule.id)].add(key.participant_id, due_at)

    by_id = {r.id: r for r in policy.config.retention}
    due_groups = tuple(
        DueGroup(
            category=category,
            rule_id=rule_id,
            legal_source=by_id[rule_id].legal_source,
            suggestion=by_id[rule_id].suggestion,
            trigger=by_id[rule_id].trigger.value,
            duration=by_id[rule_id].duration or "",
            keys=t.keys,
            participants=len(t.participants),
            earliest_due=t.first or as_of,
            latest_due=t.last or as_of,
        )
        for (category, rule_id), t in sorted(due_tally.items())
    )
    kept_groups = tuple(
        KeptGroup(category, reason, rule_id, t.keys, len(t.participants), t.first)
        for (category, reason, rule_id), t in sorted(kept_tally.items(), key=lambda kv: (kv[0][0], kv[0][1].value))
    )
    return RetentionPlan(as_of.astimezone(UTC), tuple(due), due_groups, kept_groups)
