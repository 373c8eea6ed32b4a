"""The facts evidence documents state beyond the lifecycle's own (`gateway.lifecycle.facts`): who was
notified and who acknowledged, which clients were disabled, and signed checkpoints. Plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.connectors.registry import ConnectorState


@dataclass(frozen=True, slots=True)
class CheckpointRef:
    """A signed audit checkpoint, as published: anyone can check it with the audit commands."""

    tree_size: int
    root_hex: str
    signed_at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class DisabledClient:
    client_id: str
    organisation: str
    disabled_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AckFact:
    outcome: str
    acknowledged_at: datetime
    acting_user: str
    client_id: str
    reference: str | None
    audit_seq: int


@dataclass(frozen=True, slots=True)
class RecipientNotified:
    """The deletion notice to one recipient organisation and what became of it."""

    organisation: str
    name: str
    notice_id: str
    status: str  # pending | delivered | dead
    queued_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_error: str | None
    acks: tuple[AckFact, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleInForce:
    """A sharing rule that applied under the covenant until its end."""

    id: str
    purpose: str
    operations: tuple[str, ...]
    recipients: tuple[str, ...]  # organisation ids and kinds
    roles: tuple[str, ...]
    categories: tuple[str, ...]
    legal_basis: str
    after_end_under_hold: bool = False


@dataclass(frozen=True, slots=True)
class ReportExtras:
    """What the evidence module adds to the lifecycle's covenant-end facts."""

    rules: tuple[RuleInForce, ...]
    clients_disabled: tuple[DisabledClient, ...]
    recipients: tuple[RecipientNotified, ...]
    checkpoint_at_issue: CheckpointRef | None
    config_name: str
    rehearsal: bool = False
    connectors: tuple[ConnectorState, ...] = ()  # the source systems serving the covenant, paused or not
