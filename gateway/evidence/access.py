"""Who may see which evidence, and the logging of it (framework-free; the API and the pages use it).

Jurists and privacy officers (acting role `jurist` or `privacy_officer`, which their organisation must
hold) see the covenants their organisation is a party to, their revocation reports, the mandates
under them, the legal holds in their organisation's regions, and every destruction record (counts
only). To anyone else a document does not exist (404). Every refusal, every document download and
every view of legal holds (which name case references) is an audit entry, committed first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.evidence import repository as repo
from gateway.evidence.parts import EvidenceParts
from gateway.evidence.service import DESTRUCTION_RECORD, REVOCATION_REPORT
from gateway.exchange.authorize import Authorizer
from gateway.exchange.context import RequestContext
from gateway.lifecycle.facts import legal_holds
from gateway.lifecycle.model import LegalHold
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import Organisation
from gateway.store.db import Database

EVIDENCE_ROLES = ("jurist", "privacy_officer")
EVIDENCE_PURPOSE = "evidence_review"
VIEW_EVENT = "evidence.view"
DOWNLOAD_EVENT = "evidence.download"
ISSUE_EVENT = "evidence.request"


class DocumentNotFound(Exception):
    """No such document for this organisation (the refusal is logged as `audit_seq`)."""

    def __init__(self, audit_seq: int) -> None:
        super().__init__("No such document.")
        self.audit_seq = audit_seq


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in jurist or privacy officer: the request context (fixed purpose) and organisation."""

    ctx: RequestContext
    organisation: Organisation


class EvidenceAccess:
    def __init__(self, db: Database, parts: EvidenceParts, authorizer: Authorizer) -> None:
        self._db = db
        self._parts = parts
        self._authorizer = authorizer

    @property
    def policy(self) -> CompiledPolicy:
        """Return the effective policy."""
        return self._parts.service.policy()

    def viewer(self, ctx: RequestContext, event: str = VIEW_EVENT) -> Viewer:
        """Return the viewer; log and raise Denied unless a jurist or privacy officer of a known organisation."""
        ctx = replace(ctx, purpose=EVIDENCE_PURPOSE)
        org = self.policy.organisations.get(ctx.principal.organisation)
        if org is None or ctx.role not in EVIDENCE_ROLES or ctx.role not in org.roles:
            raise self._authorizer.refuse(
                ctx,
                event,
                "role_not_allowed",
                "Only a jurist or privacy officer of a party (Acting-Role: jurist or privacy_officer) sees evidence.",
            )
        return Viewer(ctx, org)

    def covenant_ids(self, viewer: Viewer) -> list[str]:
        """Return the covenants the viewer's organisation is a party to."""
        return sorted(c.id for c in self.policy.covenants.values() if viewer.organisation.id in c.parties)

    def may_see(self, viewer: Viewer, doc: repo.DocumentSummary | repo.StoredDocument) -> bool:
        """Return whether the viewer may see a document."""
        if doc.type == DESTRUCTION_RECORD:
            return True
        return doc.type == REVOCATION_REPORT and doc.subject in self.covenant_ids(viewer)

    def documents(
        self, viewer: Viewer, doc_type: str | None = None, subject: str | None = None
    ) -> list[repo.DocumentSummary]:
        """Return the documents the viewer may see, newest first."""
        with self._db.read.connect() as conn:
            found = repo.listing(conn, doc_type, subject)
        return [d for d in found if self.may_see(viewer, d)]

    def download(self, viewer: Viewer, document_id: str, fmt: str) -> tuple[repo.StoredDocument, int]:
        """Return a document for download and the audit entry that records it (DocumentNotFound otherwise)."""
        with self._db.read.connect() as conn:
            doc = repo.get(conn, document_id)
        if doc is None or not self.may_see(viewer, doc):
            denied = self._authorizer.refuse(
                viewer.ctx, DOWNLOAD_EVENT, "unknown_document", "No such document.", document_id=document_id
            )
            raise DocumentNotFound(denied.audit_seq)
        seq = self._authorizer.record_log_access(
            viewer.ctx,
            DOWNLOAD_EVENT,
            "evidence_download",
            document_id=doc.id,
            document_type=doc.type,
            subject=doc.subject,
            version=doc.version,
            format=fmt,
        )
        return doc, seq

    def holds(self, viewer: Viewer) -> tuple[list[LegalHold], int]:
        """Return the legal holds in the viewer's organisation's regions, newest first, once the view is logged."""
        regions = set(viewer.organisation.regions)
        found = [h for h in legal_holds(self._db) if h.region in regions]
        seq = self._authorizer.record_log_access(
            viewer.ctx, VIEW_EVENT, "evidence_review", view="legal_holds", results=len(found)
        )
        return sorted(found, key=lambda h: h.set_at, reverse=True), seq

    def request_report(self, viewer: Viewer, covenant_id: str) -> repo.StoredDocument:
        """Issue a new version of a covenant's revocation report at a party's jurist's request."""
        if covenant_id not in self.covenant_ids(viewer):
            denied = self._authorizer.refuse(
                viewer.ctx, ISSUE_EVENT, "not_a_party", "No such covenant.", covenant_id=covenant_id
            )
            raise DocumentNotFound(denied.audit_seq)
        who = f"{viewer.ctx.acting_user} ({viewer.organisation.id}, {viewer.ctx.role})"
        return self._parts.service.issue_revocation_report(covenant_id, requested_by=who)

    def request_record(self, viewer: Viewer, run_id: str) -> repo.StoredDocument:
        """Issue a destruction record for a retention run at a jurist's or officer's request."""
        who = f"{viewer.ctx.acting_user} ({viewer.organisation.id}, {viewer.ctx.role})"
        return self._parts.service.issue_destruction_record(run_id, requested_by=who)
