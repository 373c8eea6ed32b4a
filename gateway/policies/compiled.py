"""The configuration compiled into the lookups the decision needs (built once, read per request)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from gateway.lifecycle.model import NO_FACTS, LifecycleFacts
from gateway.policies.loader import add_duration, policy_version
from gateway.policies.model import (
    Covenant,
    DataCategory,
    Mandate,
    Operation,
    Organisation,
    OversightAction,
    OversightActivity,
    PolicyConfig,
    Purpose,
    RetentionTrigger,
    Sensitivity,
    SharingRule,
)


@dataclass(frozen=True, slots=True)
class CompiledCovenant:
    id: str
    starts_ts: float
    ends_ts: float
    regions: frozenset[str]
    parties: frozenset[str]
    source: Covenant
    revoked_ts: float | None = None  # a recorded early revocation, already folded into ends_ts

    def in_force(self, ts: float) -> bool:
        """Return whether the covenant is in force at POSIX time `ts` (end exclusive)."""
        return self.starts_ts <= ts < self.ends_ts


@dataclass(frozen=True, slots=True)
class CompiledGrant:
    category: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CategoryGrant:
    """The fields of one category a rule grants, with the rule and legal basis that grant them."""

    category: str
    fields: tuple[str, ...]
    rule_id: str
    legal_basis: str


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    purpose: str
    operations: frozenset[Operation]
    covenants: frozenset[str]
    kinds: frozenset[str]
    organisations: frozenset[str]
    roles: frozenset[str]
    same_region: bool
    grants: tuple[CompiledGrant, ...]
    legal_basis: str
    source: SharingRule
    category_grants: tuple[CategoryGrant, ...] = ()
    after_end_under_hold: bool = False
    # Per covenant, the [from, until) window of the mandate that carries this rule there (none: no mandate).
    mandate_windows: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))

    def serves(self, org: Organisation, role: str) -> bool:
        """Return whether this rule names the organisation (or its kind) and the role."""
        return role in self.roles and (org.id in self.organisations or org.kind.value in self.kinds)

    def mandated(self, covenant_id: str, ts: float) -> bool:
        """Return whether a mandate this rule depends on under `covenant_id` is in force at `ts` (or none needed)."""
        window = self.mandate_windows.get(covenant_id)
        return window is None or window[0] <= ts < window[1]


@dataclass(frozen=True, slots=True)
class CompiledOversight:
    """An oversight activity with, per covenant it serves, the window [start, end of aftercare)."""

    id: str
    processing_activity_id: str
    legal_basis: str
    actions: frozenset[OversightAction]
    kinds: frozenset[str]
    organisations: frozenset[str]
    roles: frozenset[str]
    windows: Mapping[str, tuple[float, float]]
    source: OversightActivity
    # Per covenant, the organisations whose active legal hold in its regions keeps the window open for them.
    held: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def serves(self, org: Organisation, role: str) -> bool:
        """Return whether this activity names the organisation (or its kind) and the role."""
        return role in self.roles and (org.id in self.organisations or org.kind.value in self.kinds)

    def open_for(self, covenant_id: str, org: Organisation, ts: float) -> bool:
        """Return whether the window under `covenant_id` is open for `org` at `ts` (aftercare or a hold)."""
        start, until = self.windows[covenant_id]
        if ts < start:
            return False
        return ts < until or org.id in self.held.get(covenant_id, frozenset())


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    version: str
    config: PolicyConfig
    organisations: Mapping[str, Organisation]
    purposes: Mapping[str, Purpose]
    categories: Mapping[str, DataCategory]
    covenants: Mapping[str, CompiledCovenant]
    covenants_by_org: Mapping[str, tuple[CompiledCovenant, ...]]
    rules_by_purpose_op: Mapping[tuple[str, Operation], tuple[CompiledRule, ...]]
    sources: Mapping[str, frozenset[str]]
    mandates: Mapping[str, Mandate] = field(default_factory=lambda: MappingProxyType({}))
    lifecycle: LifecycleFacts = NO_FACTS
    oversight_by_action: Mapping[OversightAction, tuple[CompiledOversight, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    oversight: Mapping[str, CompiledOversight] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def lifecycle_version(self) -> str | None:
        """Return the version of the lifecycle facts folded in (None: the configuration alone)."""
        if self.lifecycle.empty:
            return None
        return f"lifecycle:{self.lifecycle.version}:{self.lifecycle.fingerprint()}"

    def with_lifecycle(self, facts: LifecycleFacts) -> CompiledPolicy:
        """Return the effective policy: this configuration with the recorded lifecycle facts folded in.

        A covenant ends at the earlier of its configured end and its revocation; a rule carried by a
        mandate stops at the earlier of the mandate's configured end and its recorded withdrawal.
        """
        return compile_policy(self.config, facts, version=self.version)

    def mandate_ends(self, mandate_id: str) -> float:
        """Return the POSIX time a mandate stops carrying its permissions (inf while open-ended)."""
        mandate = self.mandates[mandate_id]
        configured = mandate.ends_at.timestamp() if mandate.ends_at is not None else math.inf
        withdrawal = self.lifecycle.withdrawals.get(mandate_id)
        return min(configured, withdrawal.effective_at.timestamp()) if withdrawal else configured


def _expand(category: DataCategory, fields: tuple[str, ...] | str) -> tuple[str, ...]:
    """Return the fields a grant names; '*' never includes national-id fields (UAVG art. 46)."""
    if fields == "*":
        return tuple(
            f.name for f in category.fields if category.field_sensitivity(f.name) is not Sensitivity.NATIONAL_ID
        )
    return tuple(fields)


def _mandate_windows(config: PolicyConfig, facts: LifecycleFacts) -> dict[str, dict[str, tuple[float, float]]]:
    """Return, per rule and covenant, the window of the mandate that carries it there."""
    windows: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for mandate in config.mandates:
        until = mandate.ends_at.timestamp() if mandate.ends_at is not None else math.inf
        withdrawal = facts.withdrawals.get(mandate.id)
        if withdrawal is not None:
            until = min(until, withdrawal.effective_at.timestamp())
        for rule_id in mandate.rules:
            for cov_id in mandate.covenants:
                windows[rule_id][cov_id] = (mandate.starts_at.timestamp(), until)
    return windows


def retention_end(config: PolicyConfig, covenant: Covenant, ends_ts: float) -> float:
    """Return when the last retention period (trigger covenant_end) of data shared under a covenant runs out."""
    end = datetime.fromtimestamp(ends_ts, ZoneInfo(covenant.timezone))
    shared = {g.category for r in config.rules if covenant.id in r.covenants for g in r.grants}
    latest = ends_ts
    for rule in config.retention:
        if rule.applies_to in shared and rule.trigger is RetentionTrigger.COVENANT_END and rule.duration:
            latest = max(latest, add_duration(end, rule.duration).timestamp())
    return latest


def _compile_oversight(
    config: PolicyConfig, covenants: Mapping[str, CompiledCovenant], facts: LifecycleFacts
) -> dict[str, CompiledOversight]:
    out: dict[str, CompiledOversight] = {}
    for activity in config.oversight:
        windows: dict[str, tuple[float, float]] = {}
        for cov_id in activity.covenants or tuple(covenants):
            cov = covenants[cov_id]
            until = cov.ends_ts
            if activity.aftercare.after_retention:
                until = retention_end(config, cov.source, cov.ends_ts)
            local = datetime.fromtimestamp(until, ZoneInfo(cov.source.timezone))
            windows[cov_id] = (cov.starts_ts, add_duration(local, activity.aftercare.period).timestamp())
        out[activity.id] = CompiledOversight(
            id=activity.id,
            processing_activity_id=activity.processing_activity_id,
            legal_basis=activity.legal_basis.dpv,
            actions=frozenset(activity.actions),
            kinds=frozenset(k.value for k in activity.recipient.kinds),
            organisations=frozenset(activity.recipient.organisations),
            roles=frozenset(activity.recipient.roles),
            windows=MappingProxyType(windows),
            source=activity,
            held=MappingProxyType(
                {c: frozenset(o for o, region in facts.held_by if region in covenants[c].regions) for c in windows}
                if activity.aftercare.while_legal_hold
                else {}
            ),
        )
    return out


def compile_policy(
    config: PolicyConfig, facts: LifecycleFacts = NO_FACTS, version: str | None = None
) -> CompiledPolicy:
    """Return the compiled form of a validated configuration, with lifecycle facts folded in if given."""
    categories = {c.id: c for c in config.categories}
    covenants: dict[str, CompiledCovenant] = {}
    for c in config.covenants:
        revocation = facts.revocations.get(c.id)
        revoked_ts = revocation.effective_at.timestamp() if revocation is not None else None
        ends_ts = c.ends_at.timestamp() if revoked_ts is None else min(c.ends_at.timestamp(), revoked_ts)
        covenants[c.id] = CompiledCovenant(
            id=c.id,
            starts_ts=c.starts_at.timestamp(),
            ends_ts=ends_ts,
            regions=frozenset(c.regions),
            parties=frozenset(p.organisation for p in c.parties),
            source=c,
            revoked_ts=revoked_ts,
        )
    windows = _mandate_windows(config, facts)
    by_org: dict[str, list[CompiledCovenant]] = defaultdict(list)
    for cov in covenants.values():
        for party in cov.parties:
            by_org[party].append(cov)
    rules: dict[tuple[str, Operation], list[CompiledRule]] = defaultdict(list)
    for rule in config.rules:
        grants = tuple(CompiledGrant(g.category, _expand(categories[g.category], g.fields)) for g in rule.grants)
        compiled = CompiledRule(
            id=rule.id,
            purpose=rule.purpose,
            operations=frozenset(rule.operations),
            covenants=frozenset(rule.covenants),
            kinds=frozenset(k.value for k in rule.recipient.kinds),
            organisations=frozenset(rule.recipient.organisations),
            roles=frozenset(rule.recipient.roles),
            same_region=rule.condition == "same_region",
            grants=grants,
            legal_basis=rule.legal_basis.dpv,
            source=rule,
            category_grants=tuple(CategoryGrant(g.category, g.fields, rule.id, rule.legal_basis.dpv) for g in grants),
            after_end_under_hold=rule.during_legal_hold_after_end,
            mandate_windows=MappingProxyType(windows.get(rule.id, {})),
        )
        for op in rule.operations:
            rules[(rule.purpose, op)].append(compiled)
    oversight = _compile_oversight(config, covenants, facts)
    by_action: dict[OversightAction, list[CompiledOversight]] = defaultdict(list)
    for activity in oversight.values():
        for action in activity.source.actions:
            by_action[action].append(activity)
    return CompiledPolicy(
        version=version or policy_version(config),
        config=config,
        organisations=MappingProxyType({o.id: o for o in config.organisations}),
        purposes=MappingProxyType({p.id: p for p in config.purposes}),
        categories=MappingProxyType(categories),
        covenants=MappingProxyType(covenants),
        covenants_by_org=MappingProxyType({k: tuple(v) for k, v in by_org.items()}),
        rules_by_purpose_op=MappingProxyType({k: tuple(v) for k, v in rules.items()}),
        sources=MappingProxyType({c.id: frozenset(c.sources) for c in config.categories}),
        mandates=MappingProxyType({m.id: m for m in config.mandates}),
        lifecycle=facts,
        oversight_by_action=MappingProxyType({k: tuple(v) for k, v in by_action.items()}),
        oversight=MappingProxyType(oversight),
    )
