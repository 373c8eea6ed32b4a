"""The monitor's parts for one running gateway: its configuration, service and evidence (built on first use)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.container import Container
from gateway.evidence.parts import EvidenceParts, evidence_parts
from gateway.monitor.config import MonitorConfig, load_monitor
from gateway.monitor.service import MonitorService


@dataclass
class MonitorParts:
    config: MonitorConfig
    service: MonitorService
    evidence: EvidenceParts


def build_monitor(container: Container) -> MonitorParts | None:
    """Return the monitor's parts, or None when the configuration has no monitor.yaml."""
    config = load_monitor(container.settings.config_dir, container.policy.config)
    if config is None:
        return None
    evidence = evidence_parts(container)
    service = MonitorService(
        db=container.db,
        keys=container.store.keys,
        authorizer=container.exchange.authorizer,
        monitor=config,
        policy=evidence.service.policy,
    )
    return MonitorParts(config, service, evidence)
