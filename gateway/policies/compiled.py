"""The configuration compiled into the lookups the decision needs (built once, read per request)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.policies.loader import policy_version
from gateway.policies.model import (
    Covenant,
    DataCategory,
    Operation,
    Organisation,
    PolicyConfig,
    Purpose,
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

    def serves(self, org: Organisation, role: str) -> bool:
        """Return whether this rule names the organisation (or its kind) and the role."""
        return role in self.roles and (org.id in self.organisations or org.kind.value in self.kinds)


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


def _expand(category: DataCategory, fields: tuple[str, ...] | str) -> tuple[str, ...]:
    """Return the fields a grant names; '*' never includes national-id fields (UAVG art. 46)."""
    if fields == "*":
        return tuple(
            f.name for f in category.fields if category.field_sensitivity(f.name) is not Sensitivity.NATIONAL_ID
        )
    return tuple(fields)


def compile_policy(config: PolicyConfig) -> CompiledPolicy:
    """Return the compiled form of a validated configuration."""
    categories = {c.id: c for c in config.categories}
    covenants = {
        c.id: CompiledCovenant(
            id=c.id,
            starts_ts=c.starts_at.timestamp(),
            ends_ts=c.ends_at.timestamp(),
            regions=frozenset(c.regions),
            parties=frozenset(p.organisation for p in c.parties),
            source=c,
        )
        for c in config.covenants
    }
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
        )
        for op in rule.operations:
            rules[(rule.purpose, op)].append(compiled)
    return CompiledPolicy(
        version=policy_version(config),
        config=config,
        organisations=MappingProxyType({o.id: o for o in config.organisations}),
        purposes=MappingProxyType({p.id: p for p in config.purposes}),
        categories=MappingProxyType(categories),
        covenants=MappingProxyType(covenants),
        covenants_by_org=MappingProxyType({k: tuple(v) for k, v in by_org.items()}),
        rules_by_purpose_op=MappingProxyType({k: tuple(v) for k, v in rules.items()}),
        sources=MappingProxyType({c.id: frozenset(c.sources) for c in config.categories}),
    )
