"""Whether a covenant's data falls due for destruction without a last results measurement taken.

Light on purpose (no evidence or monitor service imports): the retention run and the jurist pages ask it.
A covenant's data first falls due at its effective end plus the shortest retention period (trigger
covenant_end) of the categories shared under it; a measurement counts when it was issued at most a
quarter before the covenant's end, or after it (every measurement covers the whole programme).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.evidence.repository import listing
from gateway.policies.compiled import CompiledCovenant, CompiledPolicy
from gateway.policies.loader import add_duration
from gateway.policies.model import RetentionTrigger
from gateway.store.db import Database

LAST_MEASUREMENT = "last_results_measurement"
LAST_QUARTER = timedelta(days=92)  # how long before a covenant's end a measurement still counts as its last


@dataclass(frozen=True, slots=True)
class MissingMeasurement:
    """A covenant whose data falls due at `due_at` while no last results measurement was taken."""

    covenant_id: str
    title: str
    due_at: datetime


def first_due(policy: CompiledPolicy, covenant: CompiledCovenant) -> datetime | None:
    """Return when data shared under the covenant first falls due for destruction (None: never by its end)."""
    end = datetime.fromtimestamp(covenant.ends_ts, ZoneInfo(covenant.source.timezone))
    shared = {g.category for r in policy.config.rules if covenant.id in r.covenants for g in r.grants}
    periods = [
        r.duration
        for r in policy.config.retention
        if r.applies_to in shared and r.trigger is RetentionTrigger.COVENANT_END and r.duration
    ]
    return min((add_duration(end, p) for p in periods), default=None)


def missing_measurements(
    db: Database,
    policy: CompiledPolicy,
    now: datetime,
    horizon: timedelta = timedelta(0),
    covenants: set[str] | None = None,
) -> list[MissingMeasurement]:
    """Return the covenants whose data falls due by `now + horizon` without a last results measurement."""
    with db.read.connect() as conn:
        issued = [d.issued_at for d in listing(conn, LAST_MEASUREMENT)]
    out = []
    for cov in policy.covenants.values():
        if covenants is not None and cov.id not in covenants:
            continue
        due = first_due(policy, cov)
        if due is None or due > now + horizon:
            continue
        window = datetime.fromtimestamp(cov.ends_ts, ZoneInfo(cov.source.timezone)) - LAST_QUARTER
        if not any(at >= window for at in issued):
            out.append(MissingMeasurement(cov.id, cov.source.title, due))
    return sorted(out, key=lambda m: (m.due_at, m.covenant_id))
