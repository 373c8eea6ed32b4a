"""The jurists' pages under /jurist: covenants (state, end, revocation, notices, reports), mandates,
legal holds, destruction records, and how to verify a document.

Server-rendered HTML without scripts; every value escaped. Sign-in is the pages' one sign-in
(`gateway.web.signin`, family `jurist`: its own cookie, scoped to /jurist, and keys of its own);
acting role `jurist` or `privacy_officer`. Sign-in (`evidence.login`), refusals, downloads and the
legal-holds page are audit entries.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import RedirectResponse, Response

from gateway.audit.writer import AuditUnavailable
from gateway.container import Container
from gateway.evidence.access import DocumentNotFound, EvidenceAccess, Viewer
from gateway.evidence.api import published
from gateway.evidence.facts import RecipientNotified
from gateway.evidence.gather import recipients_notified
from gateway.evidence.notices import covenant_reference
from gateway.evidence.parts import EvidenceParts, evidence_parts
from gateway.evidence.repository import DocumentSummary
from gateway.evidence.service import DESTRUCTION_RECORD, KEYS_PATH, REVOCATION_REPORT, EvidenceUnavailable, file_stem
from gateway.exchange.authorize import Denied
from gateway.exchange.context import RequestContext
from gateway.i18n import N_
from gateway.lifecycle.facts import CovenantState, covenant_states, mandate_facts, retention_runs_list
from gateway.web.render import SECURITY_HEADERS
from gateway.web.signin import JURIST_PAGES, FormDep, PageSignIn, SignInRefused, WebSession, html_page

log = structlog.get_logger("gateway.evidence.web")
router = APIRouter(prefix="/jurist", include_in_schema=False)
_MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}
_lock = threading.Lock()


class _Parts:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.evidence: EvidenceParts = evidence_parts(container)
        self.access = EvidenceAccess(container.db, self.evidence, container.exchange.authorizer)
        self.signin = PageSignIn(container, JURIST_PAGES, self.admit)

    def admit(self, ctx: RequestContext) -> None:
        """Record the sign-in of a jurist or privacy officer of a known organisation (refusals are logged)."""
        self.access.sign_in(ctx)


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


@dataclass
class _Page:
    request: Request
    parts: _Parts
    session: WebSession
    viewer: Viewer

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        org = self.viewer.organisation
        common: dict[str, Any] = {
            "viewer": self.session,
            "org_name": org.name,
            "csrf": self.session.csrf,
            "rehearsal": self.parts.container.settings.rehearsal,
            "audit_seq": None,
            "flash": None,
            "error": None,
            "now": self.parts.container.clock.now(),
            "org_names": {o.id: o.name for o in self.parts.access.policy.config.organisations},
            "covenant_titles": {c.id: c.title for c in self.parts.access.policy.config.covenants},
        }
        common.update(values)
        return html_page(self.parts.evidence.renderer.page(template, **common), status)


def _message(parts: _Parts, title: str, message: str, status: int, session: WebSession | None = None) -> Response:
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
    return html_page(html, status)


def _page(request: Request, parts: _Parts) -> _Page | Response:
    """Return the signed-in page, or the response to send instead (sign in, or refused)."""
    session = parts.signin.current(request)
    if session is None:
        return parts.signin.to_sign_in(request)
    try:
        viewer = parts.access.viewer(session.ctx)
    except Denied as exc:
        return _message(parts, N_("Not permitted"), exc.text, 403, session)
    except AuditUnavailable:
        return _message(
            parts, N_("The log cannot record this"), N_("The audit log is unavailable; try again shortly."), 503
        )
    return _Page(request, parts, session, viewer)


def _failure(parts: _Parts, exc: Exception, session: WebSession) -> Response:
    if isinstance(exc, DocumentNotFound):
        return _message(parts, N_("Not found"), N_("No such document or covenant."), 404, session)
    if isinstance(exc, Denied):
        return _message(parts, N_("Not permitted"), exc.text, 403, session)
    if isinstance(exc, AuditUnavailable):
        return _message(
            parts, N_("The log cannot record this"), N_("The audit log is unavailable; nothing was done."), 503
        )
    if isinstance(exc, EvidenceUnavailable):
        return _message(parts, N_("Cannot issue the document now"), str(exc), 409, session)
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
    def render(login_csrf: str) -> str:
        return parts.evidence.renderer.page(
            "jurist_login.html",
            title=N_("Sign in"),
            viewer=None,
            rehearsal=parts.container.settings.rehearsal,
            login_csrf=login_csrf,
            minutes=parts.signin.minutes,
            error=error,
            acting_user=values.get("acting_user", ""),
            role=values.get("role") or "jurist",
            audit_seq=None,
        )

    return parts.signin.login_form(request, render, status)


@router.get("/login")
def login_form(request: Request, parts: PartsDep) -> Response:
    return _login_page(request, parts)


@router.post("/login")
def login(request: Request, parts: PartsDep, form: FormDep) -> Response:
    try:
        started = parts.signin.sign_in(request, form)
    except SignInRefused as exc:
        return _login_page(request, parts, exc.text, exc.status, acting_user=exc.acting_user, role=exc.role)
    return parts.signin.started(request, started)


@router.post("/logout")
def logout(request: Request, parts: PartsDep, form: FormDep) -> Response:
    return parts.signin.sign_out(request, form)


# -- covenants -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CovenantRow:
    state: CovenantState
    notices: int
    acked: int
    missing: int
    dead: int
    report: DocumentSummary | None


def _issued(request: Request) -> int | None:
    """Return the version the redirect after issuing a document names (None when it names none)."""
    value = request.query_params.get("issued", "")
    return int(value) if value.isdigit() and len(value) < 6 else None


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
    from gateway.monitor.due import LAST_QUARTER, missing_measurements

    now = parts.container.clock.now()
    missing = missing_measurements(parts.container.db, parts.access.policy, now, LAST_QUARTER, mine)
    return page.render(
        "jurist_covenants.html",
        title=N_("Covenants"),
        nav="covenants",
        rows=rows,
        flash=_issued(request),
        missing_measurements=missing,
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
        return _message(parts, N_("Not found"), N_("No such covenant among your organisation's."), 404, page.session)
    return _covenant_page(page, covenant_id, flash=_issued(request))


@router.post("/covenants/{covenant_id}/report")
def issue_report(covenant_id: CovenantId, request: Request, parts: PartsDep, form: FormDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    if not parts.signin.csrf_ok(page.session, form.get("csrf")):
        return html_page("Invalid form token.", 400)
    try:
        doc = parts.access.request_report(page.viewer, covenant_id)
    except (DocumentNotFound, Denied, AuditUnavailable, EvidenceUnavailable) as exc:
        return _failure(parts, exc, page.session)
    return RedirectResponse(
        f"/jurist/covenants/{covenant_id}?issued={doc.version}",
        303,
        headers=SECURITY_HEADERS,
    )


# -- mandates, holds -------------------------------------------------------------------------------------


@router.get("/mandates")
def mandates(request: Request, parts: PartsDep) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    mine = set(parts.access.covenant_ids(page.viewer))
    rows = [m for m in mandate_facts(parts.access.policy, parts.container.clock.now()) if mine & set(m.covenants)]
    return page.render("jurist_mandates.html", title=N_("Mandates"), nav="mandates", rows=rows)


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
    return page.render(
        "jurist_holds.html", title=N_("Legal holds"), nav="holds", rows=rows, active=active, audit_seq=seq
    )


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
        title=N_("Destruction records"),
        nav="destruction",
        rows=rows,
        flash=_issued(request),
    )


@router.post("/retention-runs/{run_id}/record")
def issue_record(
    run_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")], request: Request, parts: PartsDep, form: FormDep
) -> Response:
    page = _page(request, parts)
    if isinstance(page, Response):
        return page
    if not parts.signin.csrf_ok(page.session, form.get("csrf")):
        return html_page("Invalid form token.", 400)
    try:
        doc = parts.access.request_record(page.viewer, run_id)
    except (DocumentNotFound, Denied, AuditUnavailable, EvidenceUnavailable) as exc:
        return _failure(parts, exc, page.session)
    return RedirectResponse(f"/jurist/destruction?issued={doc.version}", 303, headers=SECURITY_HEADERS)


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
        "jurist_verify.html",
        title=N_("How to verify"),
        nav="verify",
        keys=published(parts.container),
        keys_url=keys_url,
    )
