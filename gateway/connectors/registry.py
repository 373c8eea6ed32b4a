"""Which source serves which category for a participant, and whether its connector is paused.

`config/<name>/sources.yaml` says which source system holds a category for the participants in its
organisation's regions; a category no source names is hosted. A REST source is brokered in a
deployment when its base URL is known (in sources.yaml, or per deployment in
`GATEWAY_CONNECTOR_URLS`); until then its categories stay in the hosted store and `gateway config
check` says so. A connector is paused from the second the last of its covenants ends (configured
end, or an early revocation): the decision refuses already, the pause makes sure no call goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.connectors.port import RecordSource
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import PolicyConfig, SourceKind, SourceSystem


@dataclass(frozen=True, slots=True)
class ConnectorState:
    """A source's connector as the revocation report and `gateway connectors status` show it."""

    source: str
    name: str
    organisation: str
    kind: str
    categories: tuple[str, ...]
    covenants: tuple[str, ...]
    connected: bool  # brokered in this deployment (a REST source with a URL)
    paused: bool
    paused_since: datetime | None  # the end of its last covenant
    still_serving: tuple[str, ...] = ()  # its covenants still in force (then it is not paused)


def connector_states(
    policy: CompiledPolicy, now: datetime, covenant: str | None = None, connected: frozenset[str] = frozenset()
) -> list[ConnectorState]:
    """Return the state of every source system (only those serving `covenant`, when given) at `now`."""
    out: list[ConnectorState] = []
    ts = now.timestamp()
    for system in policy.config.sources:
        if covenant is not None and covenant not in system.covenants:
            continue
        since = paused_since(system, policy, now)
        serving = tuple(c for c in system.covenants if c in policy.covenants and policy.covenants[c].in_force(ts))
        out.append(
            ConnectorState(
                system.id,
                system.name,
                system.organisation,
                system.kind.value,
                system.categories,
                system.covenants,
                system.id in connected,
                since is not None,
                since,
                serving,
            )
        )
    return out


def base_url(system: SourceSystem, urls: Mapping[str, str]) -> str | None:
    """Return the URL a REST source is reached at in this deployment (None: not connected)."""
    if system.kind is not SourceKind.REST or system.endpoint is None:
        return None
    return urls.get(system.id) or system.endpoint.base_url


def unconnected(config: PolicyConfig, urls: Mapping[str, str]) -> list[SourceSystem]:
    """Return the REST sources without a URL in this deployment (their categories are hosted meanwhile)."""
    return [s for s in config.sources if s.kind is SourceKind.REST and base_url(s, urls) is None]


def paused_since(system: SourceSystem, policy: CompiledPolicy, now: datetime) -> datetime | None:
    """Return when the connector paused (the end of its last covenant), or None while one is in force."""
    ends = [policy.covenants[c].ends_ts for c in system.covenants if c in policy.covenants]
    if not ends:
        return None
    last = max(ends)
    return datetime.fromtimestamp(last, UTC) if now.timestamp() >= last else None


class SourceRegistry:
    """The record sources of one deployment, looked up by category and participant region."""

    def __init__(
        self,
        hosted: RecordSource,
        brokered: Mapping[str, RecordSource],
        config: PolicyConfig,
        policy: Callable[[], CompiledPolicy],
    ) -> None:
        self.hosted = hosted
        self._brokered = dict(brokered)
        self._policy = policy
        orgs = {o.id: o for o in config.organisations}
        self._by_category_region: dict[tuple[str, str], SourceSystem] = {}
        for system in config.sources:
            if system.id not in self._brokered:
                continue
            for category in system.categories:
                for region in orgs[system.organisation].regions:
                    self._by_category_region[(category, region)] = system

    async def aclose(self) -> None:
        """Close the brokered connectors' HTTP clients."""
        for source in self._brokered.values():
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def system_for(self, category: str, region: str) -> SourceSystem | None:
        """Return the brokered source system holding `category` for a participant in `region` (None: hosted)."""
        return self._by_category_region.get((category, region))

    def source(self, system: SourceSystem) -> RecordSource:
        """Return the connector of a brokered source system."""
        return self._brokered[system.id]

    def paused(self, system: SourceSystem, now: datetime) -> bool:
        """Return whether the connector is paused at `now` (all its covenants ended)."""
        return paused_since(system, self._policy(), now) is not None

    def states(self, now: datetime, covenant: str | None = None) -> list[ConnectorState]:
        """Return every source's connector state (only those serving `covenant`, when given)."""
        return connector_states(self._policy(), now, covenant, frozenset(self._brokered))
