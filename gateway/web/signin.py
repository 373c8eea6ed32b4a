"""The one sign-in of the web pages, for every page family (officer pages, jurist pages).

A family names the roles it accepts and where its cookies live. Signing in takes an access token pasted
once; the token is checked exactly as the API checks a bearer token (`authenticate_token`: signature,
expiry, client and organisation status, certificate binding, the chosen role within its scope, rate
limit), then the family's service decides whether this context may use the pages (a refusal, or a
permit, is an audit entry). The session is a row in `web_sessions`; the cookie carries its id and the
sealed token (see `session.py`). On every page the row is read (ended or expired: refused) and the
token is checked again as at sign-in, so sign-out, a disabled client or organisation, or a revoked
token ends the session at the next request, in every gateway process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs

import structlog
from fastapi import Depends, Request
from starlette.responses import RedirectResponse, Response

from gateway.api.authn import authenticate_token
from gateway.api.problems import Problem
from gateway.api.refusals import record_refusal_now
from gateway.audit.writer import AuditUnavailable
from gateway.auth.tokens import InvalidToken, VerifiedToken
from gateway.container import Container
from gateway.crypto.keys import OFFICER_SESSION_FILE, load_secret_file
from gateway.exchange.authorize import Denied
from gateway.exchange.context import Principal, RequestContext, TraceContext
from gateway.i18n import N_
from gateway.web import session_repository as repo
from gateway.web.render import SECURITY_HEADERS
from gateway.web.session import SessionCodec, session_hash

log = structlog.get_logger("gateway.web")
_USER = re.compile(r"^[A-Za-z0-9._@:+-]{1,128}$")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_FORM_LIMIT = 16 * 1024
_PURGE_AFTER = timedelta(days=1)

Admit = Callable[[RequestContext], object]
"""The family's service decision at sign-in: returns when the context may use the pages; logs and raises
Denied (or AuditUnavailable) otherwise. A permit is recorded by the service as the sign-in's audit entry."""


@dataclass(frozen=True, slots=True)
class PageFamily:
    """A set of pages behind one sign-in: the roles it accepts, its path (the cookies' scope), its home."""

    name: str
    roles: tuple[str, ...]
    path: str
    home: str

    @property
    def session_cookie(self) -> str:
        return f"{self.name}_session"

    @property
    def login_cookie(self) -> str:
        return f"{self.name}_login"

    @property
    def login_path(self) -> str:
        return f"{self.path}/login"

    @property
    def roles_text(self) -> str:
        return " or ".join(self.roles)


OFFICER_PAGES = PageFamily("officer", ("privacy_officer",), "/officer", "/officer/entries")
JURIST_PAGES = PageFamily("jurist", ("jurist", "privacy_officer"), "/jurist", "/jurist/covenants")


@dataclass(frozen=True, slots=True)
class WebSession:
    """A session whose row is live and whose token verified again on this request."""

    session_id: str
    organisation: str
    client_id: str
    acting_user: str
    role: str
    ctx: RequestContext
    csrf: str


@dataclass(frozen=True, slots=True)
class Started:
    """A session just signed in: the cookie to set and how long it lives (seconds)."""

    cookie: str
    max_age: int


class SignInRefused(Exception):
    """A sign-in that did not happen: the status to answer, the text to show, the values to keep."""

    def __init__(self, status: int, text: str, acting_user: str = "", role: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.acting_user = acting_user
        self.role = role


def html_page(body: str, status: int = 200) -> Response:
    """Return an HTML response with the pages' security headers (no scripts, no framing, no caching)."""
    return Response(body, status, headers=SECURITY_HEADERS, media_type="text/html; charset=utf-8")


async def _form(request: Request) -> dict[str, str]:
    """Return an urlencoded form body (first value per name); oversized bodies read as empty."""
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items() if v}


FormDep = Annotated[dict[str, str], Depends(_form)]


def _trace(request: Request) -> TraceContext:
    trace: TraceContext = request.state.trace
    return trace


class PageSignIn:
    """Sign-in, the session on every page, and sign-out, for one page family."""

    def __init__(self, container: Container, family: PageFamily, admit: Admit) -> None:
        self.family = family
        self._container = container
        self._db = container.db
        self._clock = container.clock
        self._admit = admit
        key = load_secret_file(container.settings.key_dir, OFFICER_SESSION_FILE, 32)
        self.codec = SessionCodec(key, family.name)

    @property
    def minutes(self) -> int:
        """Return the longest a session lasts, in minutes."""
        return self._container.settings.officer_session_minutes

    def _authenticate(self, request: Request, token: str, role: str) -> Principal:
        return authenticate_token(
            self._container,
            token,
            role,
            request.client.host if request.client else None,
            request.headers,
            _trace(request).trace_id,
        )

    # -- sign in ----------------------------------------------------------------------------------

    def login_form(self, request: Request, render: Callable[[str], str], status: int = 200) -> Response:
        """Return the sign-in page `render(login_csrf)` with its pre-login cookie."""
        nonce = self.codec.new_nonce()
        response = html_page(render(self.codec.login_csrf(nonce)), status)
        response.set_cookie(
            self.family.login_cookie,
            nonce,
            max_age=900,
            path=self.family.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def sign_in(self, request: Request, form: dict[str, str]) -> Started:
        """Return the new session of a sign-in form; raise SignInRefused (each refusal is logged)."""
        family, trace = self.family, _trace(request)
        acting_user, role = form.get("acting_user", "").strip(), form.get("role", "").strip()
        if not self.codec.login_csrf_ok(request.cookies.get(family.login_cookie), form.get("csrf")):
            raise SignInRefused(400, N_("The form expired. Please sign in again."), acting_user)
        if not _USER.match(acting_user) or not _ROLE.match(role):
            raise SignInRefused(400, f"Give your user name and the role {family.roles_text}.", acting_user)
        token = form.get("token", "").strip()

        def refused(status: int, reason: str, text: str, verified: VerifiedToken | None = None) -> SignInRefused:
            log.warning("web.signin.refused", family=family.name, reason=reason, trace_id=trace.trace_id)
            if verified is not None:
                # A token that verified names its client: the refusal is evidence, as on the API.
                try:
                    record_refusal_now(request, self._container, trace, verified.principal, reason, acting_user, role)
                except AuditUnavailable:
                    return SignInRefused(503, N_("The audit log is unavailable; try again shortly."), acting_user, role)
            return SignInRefused(status, text, acting_user, role)

        try:
            principal = self._authenticate(request, token, role)
        except InvalidToken as exc:
            known = exc.token
            if known is None and "certificate" in exc.reason:
                known = self._container.verifier.identify(token)
            reason = exc.reason.removeprefix("revoked: ") if exc.token is not None else exc.reason
            if known is not None and exc.token is None:
                reason = "certificate_mismatch"
            raise refused(401, reason, N_("The access token was not accepted."), known) from None
        except Problem as exc:
            if exc.code == "insufficient_scope":
                known = self._container.verifier.identify(token)
                raise refused(exc.status, exc.code, f"The token does not grant the role {role}.", known) from None
            raise refused(exc.status, exc.code, exc.title) from None
        ctx = RequestContext(principal, acting_user, role, None, trace)
        try:
            self._admit(ctx)
        except Denied as exc:
            raise SignInRefused(403, exc.text, acting_user, role) from None
        except AuditUnavailable:
            raise refused(503, "audit_unavailable", N_("The audit log is unavailable; try again shortly.")) from None
        if role not in family.roles:  # the service decides; this keeps a family to its roles whatever it says
            raise refused(403, "role_outside_family", f"These pages are for the role {family.roles_text}.")
        now = self._clock.now()
        expires = min(now + timedelta(minutes=self.minutes), datetime.fromtimestamp(principal.expires_at, UTC))
        session_id = self.codec.new_session_id()
        stored = repo.StoredSession(
            session_hash(session_id),
            family.name,
            principal.organisation,
            principal.client_id,
            principal.token_id,
            acting_user,
            role,
            now,
            expires,
            None,
            None,
        )
        with self._db.write.begin() as conn:
            repo.purge_expired(conn, now - _PURGE_AFTER)
            repo.add(conn, stored)
        log.info("web.session.started", family=family.name, client_id=principal.client_id, trace_id=trace.trace_id)
        return Started(self.codec.issue(session_id, token), max(1, int((expires - now).total_seconds())))

    def started(self, request: Request, started: Started) -> Response:
        """Return the redirect to the family's home that sets the session cookie."""
        response = RedirectResponse(self.family.home, 303, headers=SECURITY_HEADERS)
        response.set_cookie(
            self.family.session_cookie,
            started.cookie,
            max_age=started.max_age,
            path=self.family.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(self.family.login_cookie, path=self.family.path)
        return response

    # -- every page -------------------------------------------------------------------------------

    def current(self, request: Request) -> WebSession | None:
        """Return the request's session while its row is live and its token still verifies, else None."""
        cookie = self.codec.read(request.cookies.get(self.family.session_cookie))
        if cookie is None:
            return None
        id_hash = session_hash(cookie.session_id)
        with self._db.read.connect() as conn:
            row = repo.find(conn, id_hash)
        if row is None or row.page_family != self.family.name or row.ended_at is not None:
            return None
        if self._clock.now() >= row.expires_at:
            return None
        try:
            principal = self._authenticate(request, cookie.token, row.role)
        except InvalidToken as exc:
            self._end(id_hash, "token_rejected", exc.reason, request)
            return None
        except Problem as exc:
            if exc.status != 403:
                raise  # 429: this page is refused; the session goes on
            self._end(id_hash, "token_rejected", exc.code, request)
            return None
        if (principal.organisation, principal.client_id, principal.token_id) != (
            row.organisation,
            row.client_id,
            row.token_id,
        ):
            self._end(id_hash, "token_mismatch", "token_mismatch", request)
            return None
        ctx = RequestContext(principal, row.acting_user, row.role, None, _trace(request))
        return WebSession(
            cookie.session_id,
            row.organisation,
            row.client_id,
            row.acting_user,
            row.role,
            ctx,
            self.codec.csrf(cookie.session_id),
        )

    def csrf_ok(self, session: WebSession, token: str | None) -> bool:
        """Return whether a form's CSRF token belongs to this session."""
        return self.codec.csrf_ok(session.session_id, token)

    def to_sign_in(self, request: Request) -> Response:
        """Return the answer to a request without a live session: the sign-in page, or 401 for non-HTML."""
        accept = request.headers.get("accept", "*/*")
        if "text/html" in accept or "*/*" in accept:
            return RedirectResponse(self.family.login_path, 303, headers=SECURITY_HEADERS)
        return Response("Sign in first.", 401, headers=SECURITY_HEADERS, media_type="text/plain; charset=utf-8")

    def _end(self, id_hash: str, reason: str, detail: str, request: Request) -> None:
        with self._db.write.begin() as conn:
            ended = repo.end(conn, id_hash, self._clock.now(), reason)
        if ended:
            trace_id = _trace(request).trace_id
            log.info("web.session.ended", family=self.family.name, reason=reason, detail=detail, trace_id=trace_id)

    # -- sign out ---------------------------------------------------------------------------------

    def sign_out(self, request: Request, form: dict[str, str]) -> Response:
        """End the cookie's session and clear the cookie; 400 when the form's CSRF token is not the session's."""
        cookie = self.codec.read(request.cookies.get(self.family.session_cookie))
        if cookie is not None:
            if not self.codec.csrf_ok(cookie.session_id, form.get("csrf")):
                return html_page("Invalid form token.", 400)
            self._end(session_hash(cookie.session_id), "signed_out", "signed_out", request)
        response = RedirectResponse(self.family.login_path, 303, headers=SECURITY_HEADERS)
        response.delete_cookie(
            self.family.session_cookie,
            path=self.family.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response
