"""HTTP API of notices and evidence: the published evidence keys, recipients' notices and
acknowledgements, and signed documents for jurists.

- `GET /.well-known/evidence-keys.json`: the public keys (JWKS) that sign evidence documents and
  notices, current and retired. Public: it holds only public keys.
- `GET /v1/notices`, `GET /v1/notices/{id}`, `POST /v1/notices/{id}/ack`: for the recipient
  organisation (bearer token, `Acting-User`, `Acting-Role`); any other organisation gets 404.
- `GET /v1/evidence/documents`, `GET /v1/evidence/documents/{id}.{json|html|pdf}`,
  `POST /v1/evidence/covenants/{id}/revocation-report`, `POST /v1/evidence/retention-runs/{id}/destruction-record`:
  for jurists and privacy officers (`Acting-Role: jurist` or `privacy_officer`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from gateway.api.deps import ContainerDep, ContextDep, get_principal
from gateway.api.oversight_schemas import DocumentListOut, DocumentOut, NoticeListOut, NoticeOut
from gateway.api.problems import Problem
from gateway.api.schemas import problems
from gateway.api.strict_json import StrictJsonRoute
from gateway.audit.writer import AuditUnavailable
from gateway.container import Container
from gateway.evidence.access import DocumentNotFound, EvidenceAccess
from gateway.evidence.keys import EvidenceKey, jwks, published_keys
from gateway.evidence.parts import EvidenceParts, evidence_parts
from gateway.evidence.service import EvidenceUnavailable, file_stem
from gateway.exchange.authorize import Denied
from gateway.outbox.acks import REFERENCE_PATTERN, NoticeNotFound, NoticeView
from gateway.outbox.model import AckOutcome

_PROBLEMS = problems(404, 409)
NoticeId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The notice id (a UUID)")]
DocumentId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="The document id (a UUID)")]
MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}

keys_router = APIRouter(tags=["evidence"])
notices_router = APIRouter(
    prefix="/v1/notices",
    tags=["notices"],
    dependencies=[Depends(get_principal)],
    responses=_PROBLEMS,
    route_class=StrictJsonRoute,
)
evidence_router = APIRouter(
    prefix="/v1/evidence", tags=["evidence"], dependencies=[Depends(get_principal)], responses=_PROBLEMS
)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, Denied):
        if exc.hides_existence:
            return Problem(404, "not_found", "Not found.", audit_seq=exc.audit_seq)
        return Problem(403, exc.reason, "Access denied.", exc.text, audit_seq=exc.audit_seq)
    if isinstance(exc, NoticeNotFound | DocumentNotFound):
        return Problem(404, "not_found", "Not found.", audit_seq=exc.audit_seq)
    if isinstance(exc, AuditUnavailable):
        return Problem(
            503,
            "audit_unavailable",
            "The audit log cannot record this request; nothing was done.",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, EvidenceUnavailable):
        return Problem(409, "evidence_unavailable", "The document cannot be issued now.", str(exc))
    raise exc


_ERRORS = (Denied, NoticeNotFound, DocumentNotFound, AuditUnavailable, EvidenceUnavailable)


def get_parts(container: ContainerDep) -> EvidenceParts:
    return evidence_parts(container)


PartsDep = Annotated[EvidenceParts, Depends(get_parts)]


def published(container: Container) -> list[EvidenceKey]:
    """Return the published evidence keys, with the signing key even when the key file lacks it."""
    keys = published_keys(container.settings.key_dir)
    signer = evidence_parts(container).signer
    if signer is not None and signer.kid not in {k.kid for k in keys}:
        keys.append(signer.public)
    return keys


@keys_router.get(
    "/.well-known/evidence-keys.json",
    summary="The public keys (JWKS) that sign evidence documents and notices, current and retired",
)
def evidence_keys(container: ContainerDep) -> Response:
    return _json(jwks(published(container)), headers={"Cache-Control": "public, max-age=300"})


# -- notices ---------------------------------------------------------------------------------------


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: AckOutcome = Field(
        default=AckOutcome.RECEIVED,
        description="received: notice received; deleted: copies deleted; "
        "kept_own_basis: kept under your organisation's own lawful basis",
    )
    reference: str | None = Field(
        default=None,
        pattern=REFERENCE_PATTERN,
        description="Your own reference (no personal data)",
        examples=["DPO-2025-001"],
    )


def _notice(view: NoticeView) -> dict[str, Any]:
    n = view.notice
    return {
        "id": n.id,
        "kind": n.kind,
        "reference": n.reference,
        "status": n.status.value,
        "created_at": n.created_at.isoformat().replace("+00:00", "Z"),
        "delivered_at": n.delivered_at.isoformat().replace("+00:00", "Z") if n.delivered_at else None,
        "attempts": n.attempts,
        "notice": orjson.loads(n.body),
        "acknowledged": view.acknowledged,
        "acknowledgements": [a.as_dict() for a in view.acks],
    }


@notices_router.get("", response_model=NoticeListOut, summary="Notices addressed to your organisation (oldest first)")
def list_notices(
    ctx: ContextDep,
    parts: PartsDep,
    unacknowledged: Annotated[bool, Query(description="Only notices you have not acknowledged")] = False,
) -> Response:
    try:
        views = parts.notices.notices(ctx, unacknowledged)
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json({"organisation": ctx.principal.organisation, "items": [_notice(v) for v in views]})


@notices_router.get("/{notice_id}", response_model=NoticeOut, summary="One notice addressed to your organisation")
def get_notice(notice_id: NoticeId, ctx: ContextDep, parts: PartsDep) -> Response:
    try:
        view = parts.notices.notice(ctx, notice_id)
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json(_notice(view))


@notices_router.post(
    "/{notice_id}/ack",
    status_code=201,
    summary="Acknowledge a notice addressed to your organisation (recorded in the audit log)",
)
def acknowledge(notice_id: NoticeId, ctx: ContextDep, parts: PartsDep, body: AckIn | None = None) -> Response:
    body = body or AckIn()
    try:
        ack = parts.notices.acknowledge(ctx, notice_id, body.outcome, body.reference)
    except ValueError as exc:
        raise Problem(422, "invalid_reference", "The reference is not acceptable.", str(exc)) from None
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json(ack.as_dict(), 201)


# -- evidence documents ----------------------------------------------------------------------------


def _access(container: Container, parts: EvidenceParts) -> EvidenceAccess:
    return EvidenceAccess(container.db, parts, container.exchange.authorizer)


def _summary(d: Any, base: str) -> dict[str, Any]:
    return {
        "id": d.id,
        "type": d.type,
        "subject": d.subject,
        "version": d.version,
        "issued_at": d.issued_at.isoformat().replace("+00:00", "Z"),
        "key_id": d.key_id,
        "sha256": d.sha256,
        "files": {fmt: f"{base}/v1/evidence/documents/{d.id}.{fmt}" for fmt in ("json", "html", "pdf")},
    }


@evidence_router.get(
    "/documents", response_model=DocumentListOut, summary="Signed evidence documents you may see (newest first)"
)
def list_documents(
    ctx: ContextDep,
    container: ContainerDep,
    parts: PartsDep,
    type: Annotated[Literal["revocation_report", "destruction_record"] | None, Query()] = None,
    subject: Annotated[str | None, Query(max_length=128, description="A covenant id or retention run id")] = None,
) -> Response:
    access = _access(container, parts)
    try:
        viewer = access.viewer(ctx)
    except _ERRORS as exc:
        raise _problem(exc) from None
    base = container.settings.public_url.rstrip("/")
    return _json({"items": [_summary(d, base) for d in access.documents(viewer, type, subject)]})


@evidence_router.get(
    "/documents/{document_id}.{fmt}",
    summary="Download a signed evidence document (recorded in the audit log)",
    response_class=Response,
    responses={
        200: {
            "description": "The signed document; in a rehearsal JSON and HTML come as application/octet-stream",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/html": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def download(
    document_id: DocumentId,
    fmt: Literal["json", "html", "pdf"],
    ctx: ContextDep,
    container: ContainerDep,
    parts: PartsDep,
) -> Response:
    access = _access(container, parts)
    try:
        viewer = access.viewer(ctx, "evidence.download")
        doc, seq = access.download(viewer, document_id, fmt)
    except _ERRORS as exc:
        raise _problem(exc) from None
    body = {"json": doc.signed_json, "html": doc.html, "pdf": doc.pdf}[fmt]
    name = f"{file_stem(doc.type, doc.subject, doc.version)}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Audit-Seq": str(seq),
        "Cache-Control": "no-store",
    }
    # A rehearsal marks JSON and HTML responses on the way out; a signed file must leave byte for byte.
    media = "application/octet-stream" if container.settings.rehearsal and fmt != "pdf" else MEDIA[fmt]
    return Response(body, headers=headers, media_type=media)


@evidence_router.post(
    "/covenants/{covenant_id}/revocation-report",
    status_code=201,
    response_model=DocumentOut,
    summary="Issue a new version of a covenant's signed revocation report (a party's jurist)",
)
def issue_report(
    covenant_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")],
    ctx: ContextDep,
    container: ContainerDep,
    parts: PartsDep,
) -> Response:
    access = _access(container, parts)
    try:
        doc = access.request_report(access.viewer(ctx, "evidence.request"), covenant_id)
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json(_summary(doc, container.settings.public_url.rstrip("/")), 201)


@evidence_router.post(
    "/retention-runs/{run_id}/destruction-record",
    status_code=201,
    response_model=DocumentOut,
    summary="Issue the signed destruction record (vernietigingsverklaring) of a retention run",
)
def issue_record(
    run_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")], ctx: ContextDep, container: ContainerDep, parts: PartsDep
) -> Response:
    access = _access(container, parts)
    try:
        doc = access.request_record(access.viewer(ctx, "evidence.request"), run_id)
    except _ERRORS as exc:
        raise _problem(exc) from None
    return _json(_summary(doc, container.settings.public_url.rstrip("/")), 201)
