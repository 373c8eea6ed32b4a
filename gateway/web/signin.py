"""Signing in to the officer pages: the sign-in form, the session cookie on every page, signing out.

See `session.py` for what the cookie holds. A sign-in is refused (and the refusal logged) for any role
but `privacy_officer`; a successful one is logged as `audit.login`.
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from gateway.api.authn import authenticate_bearer
from gateway.api.problems import Problem
from gateway.audit.writer import AuditUnavailable
from gateway.auth.tokens import InvalidToken
from gateway.exchange.authorize import Denied
from gateway.exchange.context import Principal, RequestContext, TraceContext
from gateway.web.deps import OfficerParts, PartsDep
from gateway.web.render import SECURITY_HEADERS
from gateway.web.service import OFFICER_ROLE, OfficerService
from gateway.web.session import COOKIE_PATH, LOGIN_COOKIE, SESSION_COOKIE, OfficerSession

log = structlog.get_logger("gateway.web")
router = APIRouter(prefix="/officer", include_in_schema=False)
_USER = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_FORM_LIMIT = 16 * 1024


def html_page(body: str, status: int = 200) -> Response:
    """Return an HTML response with the pages' security headers (no scripts, no framing, no caching)."""
    return Response(body, status, headers=SECURITY_HEADERS, media_type="text/html; charset=utf-8")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def _form(request: Request) -> dict[str, str]:
    """Return an urlencoded form body (first value per name); oversized bodies read as empty."""
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if v}


FormDep = Annotated[dict[str, str], Depends(_form)]


def authenticate(request: Request, parts: OfficerParts, token: str, role: str) -> Principal:
    """Return the token's principal, checked exactly as the API checks a bearer token (revocation,
    certificate binding, rate limit) and with the acting role inside the token's scope.

    Raises InvalidToken (not accepted) or Problem (403 insufficient scope, 429 rate limited).
    """
    principal = authenticate_bearer(request, parts.container, token)
    scope = parts.container.auth.verifier.authenticate(token).token.scope
    if scope is not None and role not in scope:
        raise Problem(403, "insufficient_scope", "The token does not grant the role privacy_officer.")
    return principal


class Page:
    """One signed-in page request: the session, the context for the log, and the common template values."""

    def __init__(self, request: Request, parts: OfficerParts, session: OfficerSession) -> None:
        self.request = request
        self.parts = parts
        self.service: OfficerService = parts.service
        self.session = session
        trace: TraceContext = request.state.trace
        principal = Principal(session.organisation, session.client_id, session.token_id, session.expires_at)
        self.ctx = RequestContext(principal, session.acting_user, session.role, None, trace)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        policy = self.service.policy
        org = policy.organisations.get(self.session.organisation)
        common: dict[str, Any] = {
            "officer": self.session,
            "officer_org_name": org.name if org else self.session.organisation,
            "csrf": self.parts.codec.csrf(self.session),
            "status": self.service.status(),
            "scope_text": "",
            "audit_seq": None,
            "error": None,
        }
        common.update(values)
        return html_page(self.parts.renderer.render(template, **common), status)

    def problem(self, exc: Exception) -> Response:
        if isinstance(exc, Denied):
            return self.render(
                "message.html", 403, title="Not permitted", message=exc.text, is_error=True, nav="", link=None
            )
        if isinstance(exc, AuditUnavailable):
            return self.render(
                "message.html",
                503,
                title="The log cannot record this view",
                message="The audit log could not record this page view, so nothing is shown. Try again shortly.",
                is_error=True,
                nav="",
                link=None,
            )
        raise exc


def current_session(request: Request, parts: OfficerParts) -> OfficerSession | None:
    """Return the signed-in session while its token still verifies (revocation ends it at once)."""
    session = parts.codec.read(request.cookies.get(SESSION_COOKIE), parts.service.clock.timestamp())
    token = parts.codec.unseal(session) if session else None
    if session is None or token is None:
        return None
    try:
        principal = authenticate(request, parts, token, session.role)
    except InvalidToken as exc:
        log.info("web.session.token_rejected", reason=exc.reason)
        return None
    except Problem as exc:
        if exc.status != 403:
            raise
        return None
    if (principal.organisation, principal.client_id) != (session.organisation, session.client_id):
        return None
    return session


def signed_in(request: Request, parts: OfficerParts) -> Page | None:
    session = current_session(request, parts)
    return Page(request, parts, session) if session else None


def to_login() -> Response:
    return RedirectResponse("/officer/login", 303, headers=SECURITY_HEADERS)


# -- static, sign in, sign out -----------------------------------------------------------------------


@router.get("/static/officer.css")
def stylesheet() -> Response:
    css = files("gateway.web").joinpath("templates/officer.css").read_text(encoding="utf-8")
    return Response(
        css, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}, media_type="text/css"
    )


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse("/officer/entries", 303)


def _login_page(
    request: Request, parts: OfficerParts, error: str | None = None, status: int = 200, **values: str
) -> Response:
    nonce = parts.codec.new_nonce()
    html = parts.renderer.render(
        "login.html",
        title="Sign in",
        officer=None,
        status=parts.service.status(),
        login_csrf=parts.codec.login_csrf(nonce),
        minutes=parts.service.settings.officer_session_minutes,
        error=error,
        acting_user=values.get("acting_user", ""),
        role=values.get("role", OFFICER_ROLE),
        scope_text="",
        audit_seq=None,
    )
    response = html_page(html, status)
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=900, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.get("/login")
def login_form(request: Request, parts: PartsDep) -> Response:
    return _login_page(request, parts)


@router.post("/login")
def login(request: Request, parts: PartsDep, form: FormDep) -> Response:
    service = parts.service
    acting_user, role = form.get("acting_user", "").strip(), form.get("role", "").strip()
    if not parts.codec.login_csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _login_page(request, parts, "The form expired. Please sign in again.", 400, acting_user=acting_user)
    if not _USER.match(acting_user) or not _ROLE.match(role):
        return _login_page(
            request, parts, "Give your user name and the role privacy_officer.", 400, acting_user=acting_user
        )
    trace: TraceContext = request.state.trace
    try:
        principal = authenticate(request, parts, form.get("token", "").strip(), role)
    except Problem as exc:
        return _login_page(request, parts, exc.title, exc.status, acting_user=acting_user, role=role)
    except InvalidToken as exc:
        log.warning("web.login.token_rejected", reason=exc.reason, trace_id=trace.trace_id)
        return _login_page(
            request, parts, "The access token was not accepted.", 401, acting_user=acting_user, role=role
        )
    ctx = RequestContext(principal, acting_user, role, None, trace)
    try:
        service.sign_in(ctx)
    except Denied as exc:
        return _login_page(request, parts, exc.text, 403, acting_user=acting_user, role=role)
    except AuditUnavailable:
        return _login_page(
            request, parts, "The audit log is unavailable; try again shortly.", 503, acting_user=acting_user
        )
    now = service.clock.timestamp()
    expires = int(min(now + service.settings.officer_session_minutes * 60, principal.expires_at))
    session = OfficerSession(
        principal.organisation,
        principal.client_id,
        principal.token_id,
        acting_user,
        role,
        expires,
        parts.codec.new_nonce(),
        parts.codec.seal(form.get("token", "").strip()),
    )
    response = RedirectResponse("/officer/entries", 303, headers=SECURITY_HEADERS)
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
    session = current_session(request, parts)
    if session is not None and not parts.codec.csrf_ok(session, form.get("csrf")):
        return html_page("Invalid form token.", 400)
    response = to_login()
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request))
    return response
