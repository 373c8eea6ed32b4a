"""Audit entries for lifecycle actions: who acted, on whose authority, with which effect (never content)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

JURIST_ROLE = "jurist"
SYSTEM_ACTOR = "gateway.retention"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a lifecycle action: a jurist of an organisation, or the gateway's own scheduler."""

    organisation: str | None
    acting_user: str
    role: str
    client_id: str | None = None  # the partner client for API calls; None from the command line or the scheduler

    @classmethod
    def jurist(cls, organisation: str, acting_user: str, client_id: str | None = None) -> Actor:
        """Return a jurist of `organisation` acting as `acting_user`."""
        return cls(organisation, acting_user, JURIST_ROLE, client_id)

    @classmethod
    def scheduler(cls) -> Actor:
        """Return the gateway's scheduled retention job."""
        return cls(None, SYSTEM_ACTOR, "system")


def iso(moment: datetime) -> str:
    """Return an aware moment as ISO-8601 UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


def lifecycle_entry(
    event: str, now: datetime, actor: Actor, policy_version: str, reason: str, **fields: Any
) -> dict[str, Any]:
    """Return the audit entry of one lifecycle action (the writer adds seq and hashes)."""
    return {
        "v": 1,
        "time": iso(now),
        "event": event,
        "organisation": actor.organisation,
        "client_id": actor.client_id,
        "acting_user": actor.acting_user,
        "role": actor.role,
        "purpose": None,
        "trace_id": os.urandom(16).hex(),
        "span_id": os.urandom(8).hex(),
        "parent_span_id": None,
        "policy_version": policy_version,
        "decision": "permit",
        "reason": reason,
        "processing_activity_id": None,
        **fields,
    }
