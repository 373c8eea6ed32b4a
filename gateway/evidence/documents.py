"""Evidence documents as data: the revocation report and the destruction record (format version 1).

Pure functions from facts to the JSON document that is signed. Every field a jurist relies on is in
the signed document; the HTML and PDF only present it. Field names are stable within a format
version; a new field is additive, a changed meaning is a new version. No participant identifier and
no record content appears in either document: holds are named by their case reference and region.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.evidence.backups import METHOD_EXPLAINED, statements
from gateway.evidence.facts import CheckpointRef, ReportExtras
from gateway.lifecycle.facts import CheckpointFact, CovenantEndFacts, DestructionBatch

MAX_LISTED_ATTEMPTS = 1000  # beyond this the report gives counts and the audit sequence range
GATEWAY = "lvv-exchange-gateway"
ARCHIEFBESLUIT = (
    "Archiefbesluit 1995 art. 8: verklaring van vernietiging (what was destroyed, on which ground, how, "
    "and the period the records cover); Archiefwet 1995 art. 3"
)


def utc(moment: datetime | None) -> str | None:
    """Return an ISO-8601 UTC time with `Z`, whole seconds (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def local(moment: datetime, zone: str) -> str:
    """Return an ISO-8601 time with the offset of `zone`."""
    return moment.astimezone(ZoneInfo(zone)).replace(microsecond=0).isoformat()


def _checkpoint(cp: CheckpointFact | CheckpointRef | None) -> dict[str, Any] | None:
    if cp is None:
        return None
    root = cp.root_hash if isinstance(cp, CheckpointFact) else cp.root_hex
    return {"tree_size": cp.tree_size, "root_hash": root, "signed_at": utc(cp.signed_at), "signed_note": cp.note}


def _issuer(config_name: str, policy_version: str, requested_by: str) -> dict[str, Any]:
    return {
        "system": GATEWAY,
        "configuration": config_name,
        "policy_version": policy_version,
        "requested_by": requested_by,
    }


def revocation_report(
    facts: CovenantEndFacts,
    extras: ReportExtras,
    document_id: str,
    issued_at: datetime,
    version: int,
    requested_by: str,
    timezone: str,
) -> dict[str, Any]:
    """Return the revocation report document for one covenant."""
    revocation = facts.revocation
    revoked = revocation is not None and facts.effective_end < facts.configured_end
    attempts = facts.attempts_after_end
    under_this = [a for a in attempts if a.outcome == "served_under_this_covenant"]
    by_outcome = Counter((a.organisation or "?", a.outcome, a.reason) for a in attempts)
    return {
        "type": "revocation_report",
        "format_version": 1,
        "id": document_id,
        "version": version,
        "issued_at": utc(issued_at),
        "facts_as_of": utc(facts.as_of),
        "issuer": _issuer(extras.config_name, facts.policy_version, requested_by),
        "lifecycle_version": facts.lifecycle_version,
        "rehearsal": extras.rehearsal,
        "covenant": {
            "id": facts.covenant_id,
            "title": facts.title,
            "mandate_reference": facts.mandate_reference,
            "parties": [
                {"organisation": p.organisation, "name": p.name, "kind": p.kind, "gdpr_role": p.gdpr_role}
                for p in facts.parties
            ],
            "regions": list(facts.regions),
            "valid_from": utc(facts.valid_from),
            "configured_end": utc(facts.configured_end),
        },
        "end": {
            "kind": "revoked" if revoked else "ended",
            "moment": local(facts.effective_end, timezone),
            "moment_utc": utc(facts.effective_end),
            "reached": facts.ended,
            "revocation": None
            if revocation is None
            else {
                "effective_at": utc(revocation.effective_at),
                "reason": revocation.reason,
                "authority_reference": revocation.authority_reference,
                "recorded_by": revocation.acting_user,
                "recorded_by_organisation": revocation.organisation,
                "recorded_at": utc(revocation.recorded_at),
                "audit_seq": revocation.audit_seq,
            },
        },
        "in_force_until_end": {
            "rules": [
                {
                    "id": r.id,
                    "purpose": r.purpose,
                    "operations": list(r.operations),
                    "recipients": list(r.recipients),
                    "roles": list(r.roles),
                    "categories": list(r.categories),
                    "legal_basis": r.legal_basis,
                    "applies_after_end_under_legal_hold": r.id in facts.rules_after_end_under_hold,
                }
                for r in extras.rules
            ],
            "mandates": [
                {
                    "id": m.id,
                    "reference": m.reference,
                    "mandator": m.mandator,
                    "mandataries": list(m.mandataries),
                    "rules": list(m.rules),
                    "granted_at": utc(m.granted_at),
                    "configured_end": utc(m.configured_end),
                    "effective_end": utc(m.effective_end),
                    "in_force": m.in_force,
                    "withdrawal": None
                    if m.withdrawal is None
                    else {
                        "effective_at": utc(m.withdrawal.effective_at),
                        "reason": m.withdrawal.reason,
                        "authority_reference": m.withdrawal.authority_reference,
                        "recorded_by": m.withdrawal.acting_user,
                        "recorded_at": utc(m.withdrawal.recorded_at),
                        "audit_seq": m.withdrawal.audit_seq,
                    },
                }
                for m in facts.mandates
            ],
        },
        "clients_disabled": [
            {
                "client_id": c.client_id,
                "organisation": c.organisation,
                "disabled_at": utc(c.disabled_at),
                "reason": c.reason,
            }
            for c in extras.clients_disabled
        ],
        "connectors": [
            {
                "source": c.source,
                "name": c.name,
                "organisation": c.organisation,
                "kind": c.kind,
                "categories": list(c.categories),
                "paused": c.paused,
                "paused_since": utc(c.paused_since),
                "still_serving": list(c.still_serving),
            }
            for c in extras.connectors
        ],
        "recipients_notified": [
            {
                "organisation": r.organisation,
                "name": r.name,
                "notice_id": r.notice_id,
                "status": r.status,
                "queued_at": utc(r.queued_at),
                "delivered_at": utc(r.delivered_at),
                "attempts": r.attempts,
                "last_error": r.last_error,
                "acknowledged": bool(r.acks),
                "acknowledgements": [
                    {
                        "outcome": a.outcome,
                        "acknowledged_at": utc(a.acknowledged_at),
                        "acting_user": a.acting_user,
                        "client_id": a.client_id,
                        "reference": a.reference,
                        "audit_seq": a.audit_seq,
                    }
                    for a in r.acks
                ],
            }
            for r in extras.recipients
        ],
        "acknowledgements": {
            "acknowledged": sorted(r.organisation for r in extras.recipients if r.acks),
            "missing": sorted(r.organisation for r in extras.recipients if not r.acks),
        },
        "attempts_after_end": {
            "total": len(attempts),
            "denied": facts.attempts_denied,
            "served_under_other_covenants": facts.attempts_served_under_other_covenants,
            "for_legal_hold_procedure": facts.attempts_for_legal_hold_procedure,
            "served_under_this_covenant": facts.attempts_served_under_this_covenant,
            "none_served_under_this_covenant": not under_this,
            "explanation": (
                "Requests by the covenant's parties concerning its regions, from the end moment on. 'denied': "
                "refused. 'served_under_other_covenant': served under another covenant in force (e.g. a local "
                "successor), not under this one. 'legal_hold_procedure': served for the legal procedure of a "
                "participant under a legal hold. 'served_under_this_covenant' must be zero."
            ),
            "by_outcome": [
                {"organisation": o, "outcome": out, "reason": r, "count": n}
                for (o, out, r), n in sorted(by_outcome.items())
            ],
            "listed": min(len(attempts), MAX_LISTED_ATTEMPTS),
            "entries": [
                {
                    "seq": a.seq,
                    "time": utc(a.recorded_at),
                    "event": a.event,
                    "organisation": a.organisation,
                    "client_id": a.client_id,
                    "role": a.role,
                    "purpose": a.purpose,
                    "region": a.region,
                    "decision": a.decision,
                    "reason": a.reason,
                    "outcome": a.outcome,
                    "covenants": list(a.covenants),
                }
                for a in attempts[:MAX_LISTED_ATTEMPTS]
            ],
        },
        "legal_holds": [
            {
                "id": h.hold.id,
                "reason": h.hold.reason.value,
                "case_reference": h.hold.case_reference,
                "region": h.hold.region,
                "set_by_organisation": h.hold.organisation,
                "set_by": h.hold.set_by,
                "set_at": utc(h.hold.set_at),
                "set_audit_seq": h.hold.set_audit_seq,
                "lifted_at": utc(h.hold.lifted_at),
                "categories_kept": list(h.categories_kept),
                "why_kept": h.why,
            }
            for h in facts.holds_kept
        ],
        "audit": {
            "last_entry_before_end": facts.last_seq_before_end,
            "checkpoint_before_end": _checkpoint(facts.checkpoint_before_end),
            "checkpoint_at_end": _checkpoint(facts.checkpoint_after_end),
            "checkpoint_at_issue": _checkpoint(extras.checkpoint_at_issue),
            "how_to_check": (
                "'checkpoint_at_end' is the first signed checkpoint after the end that covers every entry recorded "
                "before the end; 'checkpoint_at_issue' covers the attempts listed here. Check that the later one "
                "extends the earlier, and the inclusion of any entry, with the gateway's audit commands and its "
                "published checkpoint keys (GET /v1/audit/keys)."
            ),
        },
    }


def destruction_record(
    batch: DestructionBatch,
    checkpoint: CheckpointRef | None,
    document_id: str,
    issued_at: datetime,
    version: int,
    requested_by: str,
    config_name: str,
    rehearsal: bool,
) -> dict[str, Any]:
    """Return the destruction record (vernietigingsverklaring) document for one retention run."""
    grounds = {g.rule_id: g for g in batch.grounds}
    categories = []
    for c in batch.categories:
        g = grounds.get(c.rule_id)
        categories.append(
            {
                "category": c.category,
                "name": c.category_name,
                "records": c.records_deleted,
                "data_keys_destroyed": c.keys_destroyed,
                "participants": c.participants,
                "period": {"from": utc(c.period_from), "until": utc(c.period_until)},
                "ground": {
                    "retention_rule": c.rule_id,
                    "legal_source": g.legal_source if g else None,
                    "trigger": g.trigger if g else None,
                    "duration": g.duration if g else None,
                    "suggestion": g.suggestion if g else False,
                },
            }
        )
    document: dict[str, Any] = {
        "type": "destruction_record",
        # 2: the key-epoch facts and the statements about backups derived from them (version 1 overstated).
        "format_version": 2,
        "id": document_id,
        "version": version,
        "issued_at": utc(issued_at),
        "title": "Vernietigingsverklaring (destruction record)",
        "legal_basis": ARCHIEFBESLUIT,
        "issuer": _issuer(config_name, batch.policy_version, requested_by),
        "rehearsal": rehearsal,
        "batch": {
            "id": batch.run_id,
            "status": batch.status,
            "as_of": utc(batch.as_of),
            "started_at": utc(batch.started_at),
            "executed_at": utc(batch.finished_at or batch.started_at),
            "authority": batch.authority,
            "executed_by": batch.acting_user,
            "organisation": batch.organisation,
            "epochs": [e.epoch_id for e in batch.epochs],
        },
        "method": batch.method,
        "method_explained": METHOD_EXPLAINED,
        "period_covered": {"from": utc(batch.period_from), "until": utc(batch.period_until)},
        "categories": categories,
        "totals": {
            "records": batch.records_deleted,
            "data_keys_destroyed": batch.keys_destroyed,
            "participants": batch.participants,
        },
        "kept": [
            {
                "category": k.category,
                "reason": k.reason.value,
                "retention_rule": k.rule_id,
                "data_keys": k.keys,
                "participants": k.participants,
                "next_due": utc(k.next_due),
            }
            for k in batch.kept
        ],
        "audit": {
            "first_entry": batch.audit_seq_first,
            "last_entry": batch.audit_seq_last,
            "checkpoint": _checkpoint(checkpoint),
        },
        "backups": {
            "epochs": [
                {
                    "epoch": e.epoch_id,
                    "data_keys_destroyed": e.data_keys,
                    "state": e.state,
                    "destroyed_at": utc(e.destroyed_at),
                    "expected_destruction_from": utc(e.expected_from),
                }
                for e in batch.epochs
            ],
        },
    }
    document["backups"]["statements"] = statements(document)
    return document
