"""Export audit entries as Logboek Dataverwerkingen (LDV) records, one JSON line per data subject.

Shape (Logius/MinBZK draft 0.8, as LEGAL.md lists it): `trace_id`, `span_id`, `parent_span_id`,
`status_code`, `name`, `start_time`, `end_time`, `resource`, `attributes` with
`dpl.core.processing_activity_id` (URI), `dpl.core.data_subject_id` (encrypted) and
`dpl.core.data_subject_id_type`, and `foreign_operation {trace_id, span_id, entity}` when the partner
sent a W3C traceparent (the entry has a `parent_span_id`: the partner's span in its own system).

Choices, so that a reader of an LDV store knows what the values mean:
- One line per data subject: a listing that released three participants gives three lines with the
  same trace and span (they describe one operation). An entry about no one (a refused request that
  named no participant, a log query) gives one line without data-subject attributes.
- `status_code`: STATUS_CODE_OK for a permit, STATUS_CODE_ERROR for a denial (the processing did not
  take place; draft 0.8 asks whether a processing "succeeded or failed"). LDV 1.0 would call a
  correctly handled refusal `Unset`; a consumer on 1.0 maps ERROR accordingly.
- `dpl.core.data_subject_id` is the gateway's internal participant id encrypted with AES-SIV
  (RFC 5297, AES-256-SIV, key `ldv-subject.key` in the key dir), with the id type and the recipient
  of the export (the organisation whose officer exports; `gateway-operator` for the CLI's whole-log
  export) as associated data. Deterministic per recipient on purpose: one participant always yields
  the same value in one organisation's exports, so its LDV store can find every line about one person
  (the gateway encrypts the id it resolved from a pseudonym and searches for that), while two
  organisations get unrelated values for the same person and cannot link their stores (as with
  pseudonyms). The value reveals nothing without the key and links to no pseudonym; the gateway
  turns it back into the participant given the recipient. AES-GCM would need a nonce per line and
  then equal ids would no longer match; an HMAC would match but could never be turned back into the
  participant when an officer must follow up.
- `foreign_operation.entity` is `urn:nl:oin:<OIN>` of the calling organisation (its
  Organisatie-identificatienummer from the configuration).
- Times are UTC ISO-8601 with milliseconds; start and end are the decision moment (the gateway logs
  the decision, not the transfer's duration).
- `dpl.core.processing_activity_id` is the purpose's processing-activity URI; privacy-officer access
  to the log carries the gateway's own activity URI; a request that named no known purpose has none
  (null), rather than an invented one.
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from gateway import __version__
from gateway.exchange.context import OPERATOR

if TYPE_CHECKING:  # imported where used: `gateway --help` must not load the query layer
    from gateway.audit.query import AuditQuery, EntryFilter, Scope
    from gateway.policies.compiled import CompiledPolicy

SUBJECT_ID_TYPE = "urn:nl:lvv-gateway:participant-id"
OWN_ACTIVITIES = {
    "audit_review": "urn:nl:lvv-gateway:activity:audit_review",
    "subject_access_request": "urn:nl:lvv-gateway:activity:subject_access_request",
}
SERVICE_NAME = "lvv-exchange-gateway"


class SubjectIdCipher:
    """Deterministic authenticated encryption (AES-256-SIV) of participant ids for LDV records."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 64:
            raise ValueError("the LDV subject key must be 64 bytes (AES-256-SIV)")
        self._siv = AESSIV(key)

    @staticmethod
    def _ad(recipient: str) -> list[bytes]:
        # The recipient in the associated data: one organisation's values say nothing about another's.
        return [SUBJECT_ID_TYPE.encode(), b"recipient:" + recipient.encode()]

    def encrypt(self, participant_id: str, recipient: str) -> str:
        """Return the subject id for `recipient` (base64url, no padding); equal ids give equal values."""
        token = self._siv.encrypt(participant_id.encode(), self._ad(recipient))
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode()

    def decrypt(self, value: str, recipient: str) -> str:
        """Return the participant id inside `recipient`'s subject id; raises ValueError if it is not that."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            return self._siv.decrypt(raw, self._ad(recipient)).decode()
        except (InvalidTag, ValueError) as exc:
            raise ValueError("not a subject id encrypted with this key for this recipient") from exc


def _ms(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def records_for(
    entry: dict[str, Any], recorded_at: datetime, cipher: SubjectIdCipher, policy: CompiledPolicy, recipient: str
) -> list[dict[str, Any]]:
    """Return the LDV records of one audit entry for `recipient`: one per data subject (or one without)."""
    activity = entry.get("processing_activity_id")
    if not activity:
        purpose = entry.get("purpose")
        known = policy.purposes.get(purpose) if isinstance(purpose, str) else None
        activity = known.processing_activity_id if known else OWN_ACTIVITIES.get(str(purpose))
    base: dict[str, Any] = {
        "trace_id": entry.get("trace_id"),
        "span_id": entry.get("span_id"),
        "parent_span_id": entry.get("parent_span_id"),
        "status_code": "STATUS_CODE_OK" if entry.get("decision") == "permit" else "STATUS_CODE_ERROR",
        "name": entry.get("event"),
        "start_time": _ms(recorded_at),
        "end_time": _ms(recorded_at),
        "resource": {"attributes": {"service.name": SERVICE_NAME, "service.version": __version__}},
    }
    parent = entry.get("parent_span_id")
    if parent:
        org = policy.organisations.get(str(entry.get("organisation")))
        entity = f"urn:nl:oin:{org.oin}" if org else f"urn:nl:lvv-gateway:organisation:{entry.get('organisation')}"
        base["foreign_operation"] = {"trace_id": entry.get("trace_id"), "span_id": parent, "entity": entity}
    subjects = [entry["participant"]] if entry.get("participant") else []
    subjects += [p for p in entry.get("participants") or () if p not in subjects]
    if not subjects:
        return [dict(base, attributes={"dpl.core.processing_activity_id": activity})]
    return [
        dict(
            base,
            attributes={
                "dpl.core.processing_activity_id": activity,
                "dpl.core.data_subject_id": cipher.encrypt(str(subject), recipient),
                "dpl.core.data_subject_id_type": SUBJECT_ID_TYPE,
            },
        )
        for subject in subjects
    ]


def ldv_lines(
    query: AuditQuery, scope: Scope | None, flt: EntryFilter, cipher: SubjectIdCipher, policy: CompiledPolicy
) -> Iterator[bytes]:
    """Yield the export as JSON lines (oldest entry first); `scope=None` exports the whole log (operator)."""
    recipient = scope.organisation if scope is not None else OPERATOR
    for _seq, recorded_at, entry in query.iterate_raw(scope, flt):
        for record in records_for(entry, recorded_at, cipher, policy, recipient):
            yield orjson.dumps(record) + b"\n"


# -- CLI: `gateway audit ldv-export` ------------------------------------------------------------------


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a time zone offset, e.g. 2024-11-01T00:00:00+01:00")
    return moment


def cmd_ldv_export(args: argparse.Namespace) -> int:
    from gateway.audit.query import AuditQuery, EntryFilter
    from gateway.cli import load_settings
    from gateway.container import build
    from gateway.crypto.keys import LDV_SUBJECT_FILE, load_secret_file
    from gateway.exchange.context import operator_context

    settings = load_settings()
    container = build(settings)
    try:
        cipher = SubjectIdCipher(load_secret_file(settings.key_dir, LDV_SUBJECT_FILE, 64))
        flt = EntryFilter(since=args.since, until=args.until)
        ctx = operator_context("audit_review")
        # No log, no data: the export itself is an audit entry, durable before a line is written.
        seq = container.exchange.authorizer.record_operator_access(
            ctx, "audit.ldv_export", "operator_export", query=flt.describe(), format="ldv-jsonl"
        )
        query = AuditQuery(container.db, container.policy, container.store.pseudonym)
        lines = 0
        out_path = Path(args.out)
        with out_path.open("wb") as out:
            for line in ldv_lines(query, None, flt, cipher, container.policy):
                out.write(line)
                lines += 1
    finally:
        container.close()
    print(f"wrote {lines} LDV records to {out_path} (this export is audit entry {seq})")
    return 0


def add_commands(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ldv-export` to the `gateway audit` command group."""
    ldv = audit.add_parser("ldv-export", help="write the audit log as Logboek Dataverwerkingen records (JSON lines)")
    ldv.add_argument("--out", required=True, help="file to write (one LDV record per line)")
    ldv.add_argument("--since", type=_moment, help="only entries recorded at or after this moment (ISO-8601)")
    ldv.add_argument("--until", type=_moment, help="only entries recorded before this moment (ISO-8601)")
    ldv.set_defaults(func=cmd_ldv_export)
