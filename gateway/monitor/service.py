"""The monitor's use cases: compute the protected publication for a steering viewer, and for the last
results measurement. Every computation is an audit entry, durably committed before the records are read.

Scope: a city's steering role sees the rows of the regions of the covenants the gate found open for it
(its own region); the totals over the whole programme only when its scope is the whole programme.
The publication is always computed and protected over the whole programme, then cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.crypto.epochs import DataKeyWrapper
from gateway.exchange.authorize import Authorizer, OversightGrant
from gateway.exchange.context import RequestContext
from gateway.monitor.compute import Publication, compute
from gateway.monitor.config import MonitorConfig
from gateway.monitor.repository import mint_access, participant_facts
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import OversightAction
from gateway.store.db import Database

log = structlog.get_logger("gateway.monitor")
VIEW_EVENT = "monitor.view"
MEASURE_EVENT = "monitor.measure"


@dataclass(frozen=True, slots=True)
class Scope:
    """The regions a viewer sees, and whether that is the whole programme (then with its totals)."""

    regions: tuple[str, ...]
    programme: bool


@dataclass(frozen=True, slots=True)
class Computed:
    """A publication as released to one caller, with the audit entry that records its computation."""

    publication: Publication
    scope: Scope
    audit_seq: int


def programme_regions(policy: CompiledPolicy) -> tuple[str, ...]:
    """Return every region a covenant covers, in configuration order."""
    return tuple(dict.fromkeys(r for c in policy.config.covenants for r in c.regions))


@dataclass
class MonitorService:
    db: Database
    keys: DataKeyWrapper
    authorizer: Authorizer
    monitor: MonitorConfig
    policy: Callable[[], CompiledPolicy]

    def scope(self, grant: OversightGrant) -> Scope:
        """Return the regions the grant's open covenants cover within the organisation's own regions."""
        policy = self.policy()
        org = policy.organisations[grant.organisation]
        covered = {r for c in grant.decision.covenant_ids for r in policy.covenants[c].regions}
        everything = programme_regions(policy)
        regions = tuple(r for r in everything if r in covered and r in org.regions)
        return Scope(regions, set(regions) >= set(everything))

    def _compute(self, audit_seq: int) -> Publication:
        access = mint_access(audit_seq)
        facts = participant_facts(self.db, self.keys, access, self.monitor.fields())
        return compute(self.monitor, facts, programme_regions(self.policy()))

    def _fields(self, scope: Scope) -> dict[str, Any]:
        return {
            "regions": list(scope.regions),
            "programme_totals": scope.programme,
            "monitor_version": self.monitor.version,
            "indicators": [i.id for i in self.monitor.indicators],
        }

    def view(self, grant: OversightGrant) -> Computed:
        """Return the protected tables for the grant's scope; the computation is logged first."""
        grant.require(OversightAction.MONITOR_VIEW)
        scope = self.scope(grant)
        seq = self.authorizer.record(grant, VIEW_EVENT, "monitor_computed", **self._fields(scope))
        publication = self._compute(seq).visible(scope.regions, scope.programme)
        log.info(VIEW_EVENT, organisation=grant.organisation, regions=len(scope.regions), audit_seq=seq)
        return Computed(publication, scope, seq)

    def measure(self, grant: OversightGrant) -> Computed:
        """Return the whole programme's tables for the last results measurement (logged first)."""
        grant.require(OversightAction.MONITOR_MEASURE)
        scope = Scope(programme_regions(self.policy()), True)
        seq = self.authorizer.record(grant, MEASURE_EVENT, "last_measurement_computed", **self._fields(scope))
        return Computed(self._compute(seq), scope, seq)

    def measure_as_operator(self, ctx: RequestContext) -> Computed:
        """As `measure`, for the operator on the machine (command line), logged as an operator access."""
        scope = Scope(programme_regions(self.policy()), True)
        seq = self.authorizer.record_operator_access(
            ctx, MEASURE_EVENT, "last_measurement_computed", **self._fields(scope)
        )
        return Computed(self._compute(seq), scope, seq)
