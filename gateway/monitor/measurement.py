"""The last results measurement (laatste resultaatmeting) as a signed evidence document.

The indicators over the whole programme per region, protected as every monitor answer is, with what
they were computed under: the policy version, the monitor configuration's version, the audit entry that
records the computation and the signed checkpoint that covers it, and how many data keys of the counted
categories had already been destroyed (0 means: taken before any retention run destroyed counted data).
Counts only, never a participant; suppressed cells are null.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from gateway.evidence.documents import utc
from gateway.evidence.facts import CheckpointRef
from gateway.evidence.repository import StoredDocument
from gateway.evidence.service import EvidenceService
from gateway.monitor.compute import Publication, period_label, table_json
from gateway.monitor.config import MonitorConfig
from gateway.monitor.due import LAST_MEASUREMENT
from gateway.monitor.service import Computed
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database
from gateway.store.tables import data_keys


def destroyed_keys(db: Database, categories: list[str]) -> int:
    """Return how many data keys of the counted categories are already destroyed."""
    with db.read.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(data_keys)
                .where(data_keys.c.category.in_(categories), data_keys.c.destroyed_at.is_not(None))
            ).scalar_one()
        )


def measurement_document(
    *,
    monitor: MonitorConfig,
    policy: CompiledPolicy,
    publication: Publication,
    checkpoint: CheckpointRef | None,
    audit_seq: int,
    destroyed_before: int,
    document_id: str,
    issued_at: datetime,
    version: int,
    requested_by: str,
    rehearsal: bool,
) -> dict[str, Any]:
    """Return the last results measurement document (format version 1)."""
    names = {o.id: o.name for o in policy.config.organisations}
    return {
        "type": LAST_MEASUREMENT,
        "format_version": 1,
        "id": document_id,
        "version": version,
        "issued_at": utc(issued_at),
        "issuer": {
            "system": "lvv-exchange-gateway",
            "configuration": policy.config.meta.name,
            "policy_version": policy.version,
            "requested_by": requested_by,
        },
        "rehearsal": rehearsal,
        "title": monitor.title,
        "monitor_version": monitor.version,
        "computation": {
            "audit_seq": audit_seq,
            "checkpoint": None
            if checkpoint is None
            else {
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.root_hex,
                "signed_at": utc(checkpoint.signed_at),
                "signed_note": checkpoint.note,
            },
            "data_keys_destroyed_before": destroyed_before,
            "taken_before_destruction": destroyed_before == 0,
        },
        "disclosure": {
            "threshold": publication.rules.threshold,
            "rounding": publication.rules.rounding,
            "explanation": monitor.disclosure.explanation,
            "suppressed_cells": publication.suppressed_cells(),
            "method": "docs/monitor.md",
        },
        "periods": {"grain": monitor.periods.grain, "counted_by": monitor.periods.counted_by},
        "regions": list(publication.regions),
        "covenants": [
            {
                "id": c.id,
                "title": c.source.title,
                "regions": sorted(c.regions),
                "end": utc(datetime.fromtimestamp(c.ends_ts, UTC)),
                "parties": sorted(names.get(p, p) for p in c.parties),
            }
            for c in policy.covenants.values()
        ],
        "series": {
            "id": publication.series.id,
            "name": monitor.intake_series_name,
            "definition": monitor.intake_series_definition,
            "period_labels": {p: period_label(p) for p in publication.series.cols},
            "table": table_json(publication.series),
        },
        "indicators": [
            {
                "id": ind.id,
                "name": ind.name,
                "definition": ind.definition,
                "breakdown": ind.breakdown,
                "counted_from": ind.counted_from,
                "table": table_json(table),
            }
            for ind, table in publication.indicators
        ],
    }


def issue_last_measurement(
    evidence: EvidenceService,
    monitor: MonitorConfig,
    computed: Computed,
    requested_by: str,
) -> StoredDocument:
    """Issue the signed last results measurement of a whole-programme computation; return it."""
    policy = evidence.policy()
    checkpoint = evidence.checkpoint_through(computed.audit_seq)
    destroyed = destroyed_keys(evidence.db, sorted(monitor.fields()))
    return evidence.issue(
        LAST_MEASUREMENT,
        policy.config.meta.name,
        requested_by,
        lambda doc_id, at, version: measurement_document(
            monitor=monitor,
            policy=policy,
            publication=computed.publication,
            checkpoint=checkpoint,
            audit_seq=computed.audit_seq,
            destroyed_before=destroyed,
            document_id=doc_id,
            issued_at=at,
            version=version,
            requested_by=requested_by,
            rehearsal=evidence.rehearsal,
        ),
    )
