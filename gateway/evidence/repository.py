"""Issued evidence documents in the database: stored once, never changed, versioned per subject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from gateway.store.tables import evidence_documents


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """An issued document and its three signed files."""

    id: str
    type: str
    subject: str
    version: int
    issued_at: datetime
    key_id: str
    sha256: str
    signed_json: bytes
    html: bytes
    pdf: bytes
    audit_seq: int | None


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    """A listed document, without its files."""

    id: str
    type: str
    subject: str
    version: int
    issued_at: datetime
    key_id: str
    sha256: str


def _stored(row: Any) -> StoredDocument:
    return StoredDocument(
        row.id,
        row.type,
        row.subject,
        int(row.version),
        row.issued_at,
        row.key_id,
        row.sha256,
        row.signed_json.encode(),
        bytes(row.html),
        bytes(row.pdf),
        row.audit_seq,
    )


_SUMMARY = (
    evidence_documents.c.id,
    evidence_documents.c.type,
    evidence_documents.c.subject,
    evidence_documents.c.version,
    evidence_documents.c.issued_at,
    evidence_documents.c.key_id,
    evidence_documents.c.sha256,
)


def next_version(conn: Connection, doc_type: str, subject: str) -> int:
    """Return the version number the next document about `subject` gets."""
    current = conn.execute(
        select(func.max(evidence_documents.c.version)).where(
            evidence_documents.c.type == doc_type, evidence_documents.c.subject == subject
        )
    ).scalar()
    return int(current or 0) + 1


def add(conn: Connection, doc: StoredDocument) -> None:
    conn.execute(
        insert(evidence_documents).values(
            id=doc.id,
            type=doc.type,
            subject=doc.subject,
            version=doc.version,
            issued_at=doc.issued_at,
            key_id=doc.key_id,
            sha256=doc.sha256,
            signed_json=doc.signed_json.decode(),
            html=doc.html,
            pdf=doc.pdf,
            audit_seq=doc.audit_seq,
        )
    )


def get(conn: Connection, document_id: str) -> StoredDocument | None:
    """Return the document with its files, or None."""
    row = conn.execute(select(evidence_documents).where(evidence_documents.c.id == document_id)).first()
    return _stored(row) if row is not None else None


def listing(conn: Connection, doc_type: str | None = None, subject: str | None = None) -> list[DocumentSummary]:
    """Return issued documents, newest first."""
    query = select(*_SUMMARY).order_by(evidence_documents.c.issued_at.desc(), evidence_documents.c.version.desc())
    if doc_type is not None:
        query = query.where(evidence_documents.c.type == doc_type)
    if subject is not None:
        query = query.where(evidence_documents.c.subject == subject)
    return [
        DocumentSummary(r.id, r.type, r.subject, int(r.version), r.issued_at, r.key_id, r.sha256)
        for r in conn.execute(query)
    ]
