"""The officer pages' sign-in routes and the signed-in page request (the sign-in itself is `signin.py`).

The service decides who may use the pages (`OfficerService.sign_in`: acting role `privacy_officer`); a
refusal and a successful sign-in (`audit.login`) are audit entries.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from gateway.audit.writer import AuditUnavailable
from gateway.exchange.authorize import Denied
from gateway.i18n import N_
from gateway.web.deps import OfficerParts, PartsDep
from gateway.web.service import OFFICER_ROLE, OfficerService
from gateway.web.signin import FormDep, SignInRefused, WebSession, html_page

router = APIRouter(prefix="/officer", include_in_schema=False)


class Page:
    """One signed-in page request: the session, the context for the log, and the common template values."""

    def __init__(self, request: Request, parts: OfficerParts, session: WebSession) -> None:
        self.request = request
        self.parts = parts
        self.service: OfficerService = parts.service
        self.session = session
        self.ctx = session.ctx

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        policy = self.service.policy
        org = policy.organisations.get(self.session.organisation)
        common: dict[str, Any] = {
            "officer": self.session,
            "officer_org_name": org.name if org else self.session.organisation,
            "csrf": self.session.csrf,
            "status": self.service.status(),
            "scope": None,
            "audit_seq": None,
            "error": None,
        }
        common.update(values)
        return html_page(self.parts.renderer.render(template, **common), status)

    def problem(self, exc: Exception) -> Response:
        if isinstance(exc, Denied):
            return self.render(
                "message.html", 403, title=N_("Not permitted"), message=exc.text, is_error=True, nav="", link=None
            )
        if isinstance(exc, AuditUnavailable):
            return self.render(
                "message.html",
                503,
                title=N_("The log cannot record this view"),
                message=N_("The audit log could not record this page view, so nothing is shown. Try again shortly."),
                is_error=True,
                nav="",
                link=None,
            )
        raise exc


def signed_in(request: Request, parts: OfficerParts) -> Page | Response:
    """Return the signed-in page, or the answer for a request without a live session."""
    session = parts.signin.current(request)
    return Page(request, parts, session) if session else parts.signin.to_sign_in(request)


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
    def render(login_csrf: str) -> str:
        return parts.renderer.render(
            "login.html",
            title=N_("Sign in"),
            officer=None,
            status=parts.service.status(),
            login_csrf=login_csrf,
            minutes=parts.signin.minutes,
            error=error,
            acting_user=values.get("acting_user", ""),
            role=values.get("role") or OFFICER_ROLE,
            scope=None,
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
