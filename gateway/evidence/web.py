"""The jurists' pages under /jurist: covenants (state, end, revocation, notices, reports), mandates,
legal holds, destruction records, and how to verify a document.

Server-rendered HTML without scripts; every value escaped. Sign-in works as on the privacy-officer
pages (an access token pasted once, never stored; a signed session cookie), with its own cookie,
scoped to /jurist, and a session key derived from the officer session key for this purpose only.
Acting role `jurist` or `privacy_officer`. Downloads and the legal-holds page are audit entries.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from gateway.audit.writer import AuditUnavailable
from gateway.auth.tokens import InvalidToken
from gateway.container import Container
from gateway.crypto.keys import OFFICER_SESSION_FILE, load_secret_file
from gateway.evidence.access import EVIDENCE_ROLES, DocumentNotFound, EvidenceAccess, Viewer
from gateway.evidence.api import published
from gateway.evidence.facts import RecipientNotified
from gateway.evidence.gather import recipients_notified
from gateway.evidence.notices import covenant_reference
from gateway.evidence.parts import EvidenceParts, evidence_parts
from gateway.evidence.repository import DocumentSummary
from gateway.evidence.service import DESTRUCTION_RECORD, KEYS_PATH, REVOCATION_REPORT, EvidenceUnavailable, file_stem
from gateway.exchange.authorize import Denied
from gateway.exchange.context import Principal, RequestContext, TraceContext
from gateway.lifecycle.facts import CovenantState, covenant_states, mandate_facts, retention_runs_list
from gateway.web.session import OfficerSession, SessionCodec

log = structlog.get_logger("gateway.evidence.web")
router = APIRouter(prefix="/jurist", include_in_schema=False)
SESSION_COOKIE = "jurist_session"
LOGIN_COOKIE = "jurist_login"
COOKIE_PATH = "/jurist"
_USER = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_FORM_LIMIT = 16 * 1024
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}
_lock = threading.Lock()


class _Parts:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.evidence: EvidenceParts = evidence_parts(container)
        self.access = EvidenceAccess(container.db, self.evidence, container.exchange.authorizer)
        officer_key = load_secret_file(container.settings.key_dir, OFFICER_SESSION_FILE, 32)
        # A key of its own: a jurist session is never an officer session, nor the other way round.
        self.codec = SessionCodec(hmac.new(officer_key, b"jurist-session-v1", hashlib.sha256).digest())


def _parts(request: Request) -> _Parts:
    parts: _Parts | None = getattr(request.app.state, "jurist_parts", None)
    if parts is None:
        with _lock:
            parts = getattr(request.app.state, "jurist_parts", None)
            if parts is None:
                parts = _Parts(request.app.state.container)
                request.app.state.jurist_parts = parts
    return parts


PartsDep = Annotated[_Parts, Depends(_parts)]


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if v}


FormDep = Annotated[dict[str, str], Depends(_form)]


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status, headers=_SECURITY_HEADERS, media_type="text/html; charset=utf-8")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@dataclass
class _Page:
    request: Request
    parts: _Parts
    session: OfficerSession
    viewer: Viewer

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        org = self.viewer.organisation
        common: dict[str, Any] = {
            "viewer": self.session,
            "org_name": org.name,
            "csrf": self.parts.codec.csrf(self.session),
            "rehearsal": self.parts.container.settings.rehearsal,
            "audit_seq": None,
            "flash": None,
            "error": None,
            "now": self.parts.container.clock.now(),
        }
        common.update(values)
        return _html(self.parts.evidence.renderer.page(template, **common), status)


def _message(parts: _Parts, title: str, message: str, status: int, session: OfficerSession | None = None) -> Response:
    html = parts.evidence.renderer.page(
        "jurist_message.html",
        title=title,
        message=message,
        is_error=status >= 400,
        link="/jurist/covenants" if session else "/jurist/login",
        viewer=None,
        rehearsal=parts.container.settings.rehearsal,
        audit_seq=None,
    )
    return _html(html, status)


def _page(request: Request, parts: _Parts) -> _Page | Response:
    """Return the signed-in page, or the response to send instead (sign in, or refused)."""
    session = parts.codec.read(request.cookies.get(SESSION_COOKIE), parts.container.clock.timestamp())
    if session is None:
        return RedirectResponse("/jurist/login", 303, headers=_SECURITY_HEADERS)
    trace: TraceContext = request.state.trace
    principal = Principal(session.organisation, session.client_id, session.token_id, session.expires_at)
    try:
        viewer = parts.access.viewer(RequestContext(principal, session.acting_user, session.role, None, trace))
    except Denied as exc:
        return _message(parts, "Not permitted", exc.text, 403, session)
    except AuditUnavailable:
        return _message(parts, "The log cannot record this", "The audit log is unavailable; try again shortly.", 503)
    return _Page(request, parts, session, viewer)


def _failure(parts: _Parts, exc: Exception, session: OfficerSession) -> Response:
    if isinstance(exc, DocumentNotFound):
        return _message(parts, "Not found", "No such document or covenant.", 404, session)
    if isinstance(exc, Denied):
        return _message(parts, "Not permitted", exc.text, 403, session)
    if isinstance(exc, AuditUnavailable):
        return _message(parts, "The log cannot record this", "The audit log is unavailable; nothing was done.", 503)
    if isinstance(exc, EvidenceUnavailable):
        return _message(parts, "Cannot issue the document now", str(exc), 409, session)
    raise exc


# -- static, sign in, sign out -----------------------------------------------------------------------


@router.get("/static/jurist.css")
def stylesheet() -> Response:
    css = files("gateway.evidence").joinpath("templates/jurist.css").read_text(encoding="utf-8")
    return Response(
        css, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}, media_type="text/css"
    )


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse("/jurist/covenants", 303)


def _login_page(
    request: Request, parts: _Parts, error: str | None = None, status: int = 200, **values: str
) -> Response:
    nonce = parts.codec.new_nonce()
    html = parts.evidence.renderer.page(
        "jurist_login.html",
        title="Sign in",
        viewer=None,
        rehearsal=parts.container.settings.rehearsal,
        login_csrf=parts.codec.login_csrf(nonce),
        minutes=parts.container.settings.officer_session_minutes,
        error=error,
        acting_user=values.get("acting_user", ""),
        role=values.get("role", "jurist"),
        audit_seq=None,
    )
    response = _html(html, status)
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=900, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.get("/login")
def login_form(request: Request, parts: PartsDep) -> Response:
    return _login_page(request, parts)


@router.post("/login")
def login(request: Request, parts: PartsDep, form: FormDep) -> Response:
    acting_user, role = form.get("acting_user", "").strip(), form.get("role", "").strip()
    if not parts.codec.login_csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _login_page(request, parts, "The form expired. Please sign in again.", 400, acting_user=acting_user)
    if not _USER.match(acting_user) or role not in EVIDENCE_ROLES:
        return _login_page(
            request, parts, "Give your user name and the role jurist or privacy_officer.", 400, acting_user=acting_user
        )
    trace: TraceContext = request.state.trace
    try:
        principal = parts.container.verifier.verify(form.get("token", "").strip())
    except InvalidToken as exc:
        log.warning("jurist.login.token_rejected", reason=exc.reason, trace_id=trace.trace_id)
        return _login_page(
            request, parts, "The access token was not accepted.", 401, acting_user=acting_user, role=role
        )
    ctx = RequestContext(principal, acting_user, role, None, trace)
    try:
        parts.access.sign_in(ctx)
    except Denied as exc:
        return _login_page(request, parts, exc.text, 403, acting_user=acting_user, role=role)
    except AuditUnavailable:
        return _login_page(request, parts, "The audit log is unavailable; try again shortly.", 503)
    now = parts.container.clock.timestamp()
    minutes = parts.container.settings.officer_session_minutes
    expires = int(min(now + minutes * 60, principal.expires_at))
    session = OfficerSession(
        principal.organisation,
        principal.client_id,
        principal.token_id,
        acting_user,
        role,
        expires,
        parts.codec.new_nonce(),
    )
    response = RedirectResponse("/jurist/covenants", 303, headers=_SECURITY_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        parts.codec.issue(session),
        max_age=max(1, int(expires - now)),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(request: Request, parts: PartsDep, form: FormDep) -> Response:
    session = parts.codec.read(request.cookies.get(SESSION_COOKIE), parts.container.clock.timestamp())
    if session is not None and not parts.codec.csrf_ok(session, form.get("csrf")):
        return _html("Invalid form token.", 400)
    response = RedirectResponse("/jurist/login", 303, headers=_SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request))
    return response


# -- covenants -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CovenantRow:
    state: CovenantState
    notices: int
    acked: int
    missing: int
    dead: int
    report: DocumentSummary | None


def _notice_rows(parts: _Parts, covenant_id: str) -> list[RecipientNotified]:
    return recipients_notified(parts.container.db, parts.evidence.outbox, parts.access.policy, covenant_id)


@router.get("/covenants")
def covenants(request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    mine = set(parts.access.covenant_ids(page.viewer))
    reports = parts.access.documents(page.viewer, REVOCATION_REPORT)
    rows = []
    for state in covenant_states(parts.access.policy, parts.container.clock.now()):
        if state.id not in mine:
            continue
        notices = _notice_rows(parts, state.id)
        rows.append(
            _CovenantRow(
                state=state,
                notices=len(notices),
                acked=sum(1 for n in notices if n.acks),
                missing=sum(1 for n in notices if not n.acks),
                dead=sum(1 for n in notices if n.status == "dead"),
                report=next((d for d in reports if d.subject == state.id), None),
            )
        )
    rows.sort(key=lambda r: (r.state.effective_end, r.state.id))
    return page.render(
        "jurist_covenants.html", title="Covenants", nav="covenants", rows=rows, flash=request.query_params.get("issued")
    )


def _covenant_page(page: _Page, covenant_id: str, **values: Any) -> Response:
    parts = page.parts
    state = next(s for s in covenant_states(parts.access.policy, parts.container.clock.now()) if s.id == covenant_id)
    reports = parts.access.documents(page.viewer, REVOCATION_REPORT, covenant_id)
    covenant = parts.access.policy.covenants[covenant_id].source
    names = {o.id: o.name for o in parts.access.policy.config.organisations}
    return page.render(
        "jurist_covenant.html",
        title=state.title,
        nav="covenants",
        s=state,
        ended=state.state in ("ended", "revoked"),
        parties=[names.get(p.organisation, p.organisation) for p in covenant.parties],
        notices=_notice_rows(parts, covenant_id),
        reports=reports,
        stem=file_stem(REVOCATION_REPORT, covenant_id, reports[0].version) if reports else "",
        reference=covenant_reference(covenant_id),
        **values,
    )


CovenantId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


@router.get("/covenants/{covenant_id}")
def covenant(covenant_id: CovenantId, request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    if covenant_id not in parts.access.covenant_ids(page.viewer):
        return _message(parts, "Not found", "No such covenant among your organisation's.", 404, page.session)
    return _covenant_page(page, covenant_id, flash=request.query_params.get("issued"))


@router.post("/covenants/{covenant_id}/report")
def issue_report(covenant_id: CovenantId, request: Request, parts: PartsDep, form: FormDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    if not parts.codec.csrf_ok(page.session, form.get("csrf")):
        return _html("Invalid form token.", 400)
    try:
        doc = parts.access.request_report(page.viewer, covenant_id)
    except (DocumentNotFound, Denied, AuditUnavailable, EvidenceUnavailable) as exc:
        return _failure(parts, exc, page.session)
    return RedirectResponse(
        f"/jurist/covenants/{covenant_id}?issued=Revocation+report+version+{doc.version}+issued.",
        303,
        headers=_SECURITY_HEADERS,
    )


# -- mandates, holds -------------------------------------------------------------------------------------


@router.get("/mandates")
def mandates(request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    mine = set(parts.access.covenant_ids(page.viewer))
    rows = [m for m in mandate_facts(parts.access.policy, parts.container.clock.now()) if mine & set(m.covenants)]
    return page.render("jurist_mandates.html", title="Mandates", nav="mandates", rows=rows)


@router.get("/holds")
def holds(request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    try:
        rows, seq = parts.access.holds(page.viewer)
    except (Denied, AuditUnavailable) as exc:
        return _failure(parts, exc, page.session)
    active = sum(1 for h in rows if h.active)
    return page.render("jurist_holds.html", title="Legal holds", nav="holds", rows=rows, active=active, audit_seq=seq)


# -- destruction records -----------------------------------------------------------------------------------


@router.get("/destruction")
def destruction(request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    records = parts.access.documents(page.viewer, DESTRUCTION_RECORD)
    rows = [
        {"run": run, "record": next((d for d in records if d.subject == run.run_id), None)}
        for run in retention_runs_list(parts.container.db)
        if run.keys_destroyed > 0 or any(d.subject == run.run_id for d in records)
    ]
    return page.render(
        "jurist_destruction.html",
        title="Destruction records",
        nav="destruction",
        rows=rows,
        flash=request.query_params.get("issued"),
    )


@router.post("/retention-runs/{run_id}/record")
def issue_record(
    run_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")], request: Request, parts: PartsDep, form: FormDep
) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    if not parts.codec.csrf_ok(page.session, form.get("csrf")):
        return _html("Invalid form token.", 400)
    try:
        doc = parts.access.request_record(page.viewer, run_id)
    except (DocumentNotFound, Denied, AuditUnavailable, EvidenceUnavailable) as exc:
        return _failure(parts, exc, page.session)
    return RedirectResponse(
        f"/jurist/destruction?issued=Destruction+record+version+{doc.version}+issued.", 303, headers=_SECURITY_HEADERS
    )


# -- downloads, verification -----------------------------------------------------------------------------


@router.get("/documents/{document_id}.{fmt}")
def download(
    document_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")],
    fmt: Annotated[str, Path(pattern=r"^(json|html|pdf)$")],
    request: Request,
    parts: PartsDep,
) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    try:
        doc, seq = parts.access.download(page.viewer, document_id, fmt)
    except (DocumentNotFound, Denied, AuditUnavailable) as exc:
        return _failure(parts, exc, page.session)
    body = {"json": doc.signed_json, "html": doc.html, "pdf": doc.pdf}[fmt]
    name = f"{file_stem(doc.type, doc.subject, doc.version)}.{fmt}"
    # A rehearsal marks JSON and HTML responses on the way out; a signed file must leave byte for byte.
    media = "application/octet-stream" if parts.container.settings.rehearsal and fmt != "pdf" else _MEDIA[fmt]
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "Audit-Seq": str(seq),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(body, headers=headers, media_type=media)


@router.get("/verify")
def verify_page(request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    keys_url = f"{parts.container.settings.public_url.rstrip('/')}{KEYS_PATH}"
    return page.render(
        "jurist_verify.html", title="How to verify", nav="verify", keys=published(parts.container), keys_url=keys_url
    )
