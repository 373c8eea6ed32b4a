"""Who may see which evidence, and the logging of it (framework-free; the API and the pages use it).

Whether a caller may see or issue evidence at all is the gate's (`Authorizer.oversee`, the
`evidence_review` activity of oversight.yaml: jurists and privacy officers of a party, during the
covenant and its aftercare). Within that, a viewer sees the covenants its organisation is a party
to, their revocation reports, the mandates under them, the legal holds in its organisation's
regions, and every destruction record (counts only). To anyone else a document does not exist (404).
Every refusal, every document download and every view of legal holds (which name case references)
is an audit entry, committed first.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.evidence import repository as repo
from gateway.evidence.parts import EvidenceParts
from gateway.evidence.service import DESTRUCTION_RECORD, REVOCATION_REPORT
from gateway.exchange.authorize import Authorizer, Denied, OversightGrant
from gateway.exchange.context import RequestContext
from gateway.lifecycle.facts import legal_holds
from gateway.lifecycle.model import LegalHold
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import Organisation, OversightAction
from gateway.store.db import Database

VIEW_EVENT = "evidence.view"
DOWNLOAD_EVENT = "evidence.download"
ISSUE_EVENT = "evidence.request"
LOGIN_EVENT = "evidence.login"


class DocumentNotFound(Exception):
    """No such document for this organisation (the refusal is logged as `audit_seq`)."""

    def __init__(self, audit_seq: int) -> None:
        super().__init__("No such document.")
        self.audit_seq = audit_seq


@dataclass(frozen=True, slots=True)
class Viewer:
    """A jurist or privacy officer the gate let see evidence: the grant, its context and organisation."""

    grant: OversightGrant
    organisation: Organisation

    @property
    def ctx(self) -> RequestContext:
        return self.grant.ctx


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
        """Return the viewer the gate permits to see evidence; the gate logs and raises Denied otherwise."""
        grant = self._authorizer.oversee(ctx, event, OversightAction.EVIDENCE_VIEW)
        return Viewer(grant, self.policy.organisations[grant.organisation])

    def sign_in(self, ctx: RequestContext) -> int:
        """Record that a jurist or privacy officer opened the evidence pages (refused and logged otherwise)."""
        viewer = self.viewer(ctx, LOGIN_EVENT)
        return self._authorizer.record(viewer.grant, LOGIN_EVENT, "session_started")

    def covenant_ids(self, viewer: Viewer) -> list[str]:
        """Return the covenants the viewer's organisation is a party to."""
        return sorted(c.id for c in self.policy.covenants.values() if viewer.organisation.id in c.parties)

    def may_see(self, viewer: Viewer, doc: repo.DocumentSummary | repo.StoredDocument) -> bool:
        """Return whether the viewer may see a document."""
        if doc.type in (DESTRUCTION_RECORD, "last_results_measurement"):
            return True  # counts only (destruction), or suppressed counts over the whole programme
        return doc.type == REVOCATION_REPORT and doc.subject in self.covenant_ids(viewer)

    def documents(
        self, viewer: Viewer, doc_type: str | None = None, subject: str | None = None
    ) -> list[repo.DocumentSummary]:
        """Return the documents the viewer may see, newest first, once the listing is logged."""
        with self._db.read.connect() as conn:
            found = repo.listing(conn, doc_type, subject)
        shown = [d for d in found if self.may_see(viewer, d)]
        self._authorizer.record(
            viewer.grant,
            VIEW_EVENT,
            "evidence_review",
            view="documents",
            document_type=doc_type,
            subject=subject,
            results=len(shown),
        )
        return shown

    def download(self, viewer: Viewer, document_id: str, fmt: str) -> tuple[repo.StoredDocument, int]:
        """Return a document for download and the audit entry that records it (DocumentNotFound otherwise)."""
        with self._db.read.connect() as conn:
            doc = repo.get(conn, document_id)
        if doc is None or not self.may_see(viewer, doc):
            denied = self._authorizer.refuse_within(
                viewer.grant, DOWNLOAD_EVENT, "unknown_document", "No such document.", document_id=document_id
            )
            raise DocumentNotFound(denied.audit_seq)
        seq = self._authorizer.record(
            viewer.grant,
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
        seq = self._authorizer.record(
            viewer.grant, VIEW_EVENT, "evidence_review", view="legal_holds", results=len(found)
        )
        return sorted(found, key=lambda h: h.set_at, reverse=True), seq

    def request_report(self, viewer: Viewer, covenant_id: str) -> repo.StoredDocument:
        """Issue a new version of a covenant's revocation report at a party's jurist's request."""
        try:
            grant = self._authorizer.oversee(
                viewer.ctx, ISSUE_EVENT, OversightAction.EVIDENCE_ISSUE, covenant_id, covenant_id=covenant_id
            )
        except Denied as exc:
            if exc.hides_existence:
                raise DocumentNotFound(exc.audit_seq) from None
            raise
        self._authorizer.record(grant, ISSUE_EVENT, "evidence_issue", covenant_id=covenant_id)
        who = f"{viewer.ctx.acting_user} ({viewer.organisation.id}, {viewer.ctx.role})"
        return self._parts.service.issue_revocation_report(covenant_id, requested_by=who)

    def request_record(self, viewer: Viewer, run_id: str) -> repo.StoredDocument:
        """Issue a destruction record for a retention run at a jurist's or officer's request."""
        grant = self._authorizer.oversee(viewer.ctx, ISSUE_EVENT, OversightAction.EVIDENCE_ISSUE, run_id=run_id)
        self._authorizer.record(grant, ISSUE_EVENT, "evidence_issue", run_id=run_id)
        who = f"{viewer.ctx.acting_user} ({viewer.organisation.id}, {viewer.ctx.role})"
        return self._parts.service.issue_destruction_record(run_id, requested_by=who)
