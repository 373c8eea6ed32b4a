"""Issuing evidence: gather the facts, build the document, sign it and its renditions, log, store.

Every issued document is a new immutable version; the audit entry `evidence.issued` (durably
committed before the document is stored) names its id, type, subject and SHA-256, so the log itself
attests which documents the gateway issued.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import NoResultFound

from gateway.audit.sealer import Sealer
from gateway.audit.writer import AuditWriter
from gateway.clock import Clock
from gateway.connectors.registry import connector_states
from gateway.evidence import documents, gather
from gateway.evidence import repository as repo
from gateway.evidence.envelope import HTML_MEDIA_TYPE, PDF_MEDIA_TYPE, SignedDocument, sign_document, sign_rendition
from gateway.evidence.facts import CheckpointRef, ReportExtras
from gateway.evidence.keys import EvidenceSigner
from gateway.evidence.render_html import EvidenceRenderer
from gateway.evidence.render_pdf import document_pdf
from gateway.lifecycle.facts import CovenantEndFacts, covenant_end_facts, destruction_facts
from gateway.outbox.delivery import system_entry
from gateway.outbox.repository import Outbox
from gateway.policies.compiled import CompiledPolicy
from gateway.store.db import Database

log = structlog.get_logger("gateway.evidence")
ISSUED_EVENT = "evidence.issued"
KEYS_PATH = "/.well-known/evidence-keys.json"
REVOCATION_REPORT = "revocation_report"
DESTRUCTION_RECORD = "destruction_record"


class EvidenceUnavailable(Exception):
    """The document cannot be issued now (no signing key, covenant still in force, unknown subject)."""


def file_stem(doc_type: str, subject: str, version: int) -> str:
    """Return the download file name without extension, e.g. revocation-report-lvv-amsterdam-v2."""
    kind = doc_type.replace("_", "-")
    return f"{kind}-{subject}-v{version}"


@dataclass
class EvidenceService:
    db: Database
    policy: Callable[[], CompiledPolicy]  # the effective policy (lifecycle facts folded in), read per call
    outbox: Outbox
    audit: AuditWriter
    clock: Clock
    signer: EvidenceSigner | None
    renderer: EvidenceRenderer
    public_url: str
    sealer: Sealer | None = None
    rehearsal: bool = False

    def verify_hint(self, stem: str, ext: str = "json") -> str:
        """Return the command that checks a downloaded file offline."""
        return f"gateway verify {stem}.{ext} --keys evidence-keys.json"

    def keys_url(self) -> str:
        """Return where the evidence keys (evidence-keys.json) are published."""
        return f"{self.public_url.rstrip('/')}{KEYS_PATH}"

    def _seal_through(self, seq: int) -> None:
        """Make sure a signed checkpoint covers entry `seq` (sign one now if this process is a sealer)."""
        if self.sealer is not None and gather.checkpoint_covering(self.db, seq) is None:
            self.sealer.seal()

    # -- revocation report ---------------------------------------------------------------------------

    def covenant_facts(self, covenant_id: str) -> tuple[CovenantEndFacts, ReportExtras]:
        """Return the facts of the covenant's revocation report as of now."""
        policy = self.policy()
        if covenant_id not in policy.covenants:
            raise EvidenceUnavailable(f"no covenant {covenant_id!r} in the configuration")
        now = self.clock.now()
        facts = covenant_end_facts(self.db, policy, covenant_id, now)
        if not facts.ended:
            raise EvidenceUnavailable(f"covenant {covenant_id} is in force until {facts.effective_end.isoformat()}")
        # The report names the checkpoint that covers the log at the end, and one that covers its attempts.
        self._seal_through(max((a.seq for a in facts.attempts_after_end), default=facts.last_seq_before_end))
        if facts.checkpoint_after_end is None and self.sealer is not None:
            facts = covenant_end_facts(self.db, policy, covenant_id, now)
        extras = ReportExtras(
            rules=tuple(gather.rules_in_force(policy, covenant_id)),
            clients_disabled=tuple(gather.clients_disabled(self.db, policy, covenant_id)),
            recipients=tuple(gather.recipients_notified(self.db, self.outbox, policy, covenant_id)),
            checkpoint_at_issue=gather.latest_checkpoint(self.db),
            config_name=policy.config.meta.name,
            rehearsal=self.rehearsal,
            connectors=tuple(connector_states(policy, now, covenant_id)),
        )
        return facts, extras

    def issue_revocation_report(self, covenant_id: str, requested_by: str = "gateway") -> repo.StoredDocument:
        """Issue a new version of the covenant's signed revocation report; return it."""
        facts, extras = self.covenant_facts(covenant_id)
        zone = self.policy().covenants[covenant_id].source.timezone
        return self._issue(
            REVOCATION_REPORT,
            covenant_id,
            requested_by,
            lambda doc_id, at, v: documents.revocation_report(facts, extras, doc_id, at, v, requested_by, zone),
        )

    # -- destruction record --------------------------------------------------------------------------

    def issue_destruction_record(self, run_id: str, requested_by: str = "gateway") -> repo.StoredDocument:
        """Issue the signed destruction record (vernietigingsverklaring) of one retention run; return it."""
        policy = self.policy()
        try:
            batch = destruction_facts(self.db, policy, run_id)
        except NoResultFound:
            raise EvidenceUnavailable(f"no retention run {run_id!r}") from None
        if batch.status == "running":
            raise EvidenceUnavailable(
                f"retention run {run_id} is still running (if its process died, the next retention run closes it "
                "as interrupted; then its record can be issued)"
            )
        checkpoint = None
        if batch.audit_seq_last is not None:
            self._seal_through(batch.audit_seq_last)
            checkpoint = gather.checkpoint_covering(self.db, batch.audit_seq_last)
        name = policy.config.meta.name
        return self._issue(
            DESTRUCTION_RECORD,
            run_id,
            requested_by,
            lambda doc_id, at, v: documents.destruction_record(
                batch, checkpoint, doc_id, at, v, requested_by, name, self.rehearsal
            ),
        )

    # -- common --------------------------------------------------------------------------------------

    def issue(
        self, doc_type: str, subject: str, requested_by: str, build: Callable[[str, datetime, int], dict[str, Any]]
    ) -> repo.StoredDocument:
        """Issue a document of another registered type (e.g. the monitor's last results measurement)."""
        return self._issue(doc_type, subject, requested_by, build)

    def checkpoint_through(self, seq: int) -> CheckpointRef | None:
        """Return the signed checkpoint covering entry `seq`, signing one now if this process is a sealer."""
        self._seal_through(seq)
        return gather.checkpoint_covering(self.db, seq)

    def _issue(
        self,
        doc_type: str,
        subject: str,
        requested_by: str,
        build: Callable[[str, datetime, int], dict[str, Any]],
    ) -> repo.StoredDocument:
        if self.signer is None:
            raise EvidenceUnavailable("no evidence signing key in the key dir; run `gateway keys init`")
        with self.db.read.connect() as conn:
            version = repo.next_version(conn, doc_type, subject)
        now = self.clock.now().replace(microsecond=0)
        doc_id = str(uuid.uuid4())
        signed = sign_document(build(doc_id, now, version), self.signer)
        stem = file_stem(doc_type, subject, version)
        html = self.renderer.document_html(signed, self.verify_hint(stem, "html"), self.keys_url())
        pdf = document_pdf(signed, self.renderer.timezone, self.verify_hint(stem, "pdf"), self.keys_url())
        entry = system_entry(
            ISSUED_EVENT,
            now,
            None,
            decision="permit",
            reason="evidence_issued",
            policy_version=self.policy().version,
            document_id=doc_id,
            document_type=doc_type,
            subject=subject,
            version=version,
            sha256=signed.sha256,
            key_id=signed.kid,
            requested_by=requested_by,
        )
        seq = self.audit.append(entry, now).seq
        stored = repo.StoredDocument(
            id=doc_id,
            type=doc_type,
            subject=subject,
            version=version,
            issued_at=now,
            key_id=signed.kid,
            sha256=signed.sha256,
            signed_json=signed.file_bytes,
            html=sign_rendition(html, HTML_MEDIA_TYPE, signed, self.signer),
            pdf=sign_rendition(pdf, PDF_MEDIA_TYPE, signed, self.signer),
            audit_seq=seq,
        )
        with self.db.write.begin() as conn:
            repo.add(conn, stored)
        log.info(ISSUED_EVENT, document_id=doc_id, type=doc_type, subject=subject, version=version, audit_seq=seq)
        return stored

    @staticmethod
    def signed_document(stored: repo.StoredDocument) -> SignedDocument:
        """Return the signed document a stored one holds (for pages that show its facts)."""
        envelope = orjson.loads(stored.signed_json)
        return SignedDocument(envelope["document"], stored.signed_json, stored.sha256, stored.key_id)
