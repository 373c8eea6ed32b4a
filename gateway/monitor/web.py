"""The steering monitor page under /monitor: tables and server-rendered SVG charts, CSV downloads.

Dutch, no scripts, every value escaped. Sign-in is the pages' one sign-in (`gateway.web.signin`, family
`monitor`: its own cookie scoped to /monitor) for the role `steering`; the sign-in, each view and each
download pass the gate (`monitor.view`) and are audit entries before anything is shown.
"""

from __future__ import annotations

import threading
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from gateway.audit.writer import AuditUnavailable
from gateway.exchange.authorize import Denied, OversightGrant
from gateway.exchange.context import RequestContext
from gateway.monitor.api import monitor_parts
from gateway.monitor.compute import SERIES_ID, Publication, period_label
from gateway.monitor.disclosure import TOTAL
from gateway.monitor.render import SUPPRESSED_MARK, grid, region_labels, table_csv
from gateway.monitor.service import VIEW_EVENT, Computed
from gateway.monitor.svg import bar_chart, line_chart
from gateway.monitor.wiring import MonitorParts
from gateway.policies.model import OversightAction
from gateway.web.render import SECURITY_HEADERS
from gateway.web.signin import FormDep, PageFamily, PageSignIn, SignInRefused, WebSession, html_page

MONITOR_PAGES = PageFamily("monitor", ("steering",), "/monitor", "/monitor/")
LOGIN_EVENT = "monitor.login"
router = APIRouter(prefix="/monitor", include_in_schema=False)
_lock = threading.Lock()
_GRAIN = {"month": "maanden", "quarter": "kwartalen", "year": "jaren"}
_env = Environment(
    loader=PackageLoader("gateway.monitor", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class _Pages:
    def __init__(self, request: Request) -> None:
        self.parts: MonitorParts = monitor_parts(request)
        self.container = request.app.state.container
        self.signin = PageSignIn(self.container, MONITOR_PAGES, self.admit)

    def admit(self, ctx: RequestContext) -> None:
        """Let a steering role of an organisation the gate serves sign in; the sign-in is logged."""
        authorizer = self.parts.service.authorizer
        grant = authorizer.oversee(ctx, LOGIN_EVENT, OversightAction.MONITOR_VIEW)
        authorizer.record(grant, LOGIN_EVENT, "session_started")

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        common: dict[str, Any] = {"viewer": None, "audit_seq": None, "title": "Monitor LVV"}
        common.update(values)
        return html_page(_env.get_template(template).render(**common), status)


def _pages(request: Request) -> _Pages:
    pages: _Pages | None = getattr(request.app.state, "monitor_pages", None)
    if pages is None:
        with _lock:
            pages = getattr(request.app.state, "monitor_pages", None)
            if pages is None:
                pages = _Pages(request)
                request.app.state.monitor_pages = pages
    return pages


PagesDep = Annotated[_Pages, Depends(_pages)]


def _message(pages: _Pages, message: str, status: int, signed_in: bool = True) -> Response:
    link = "/monitor/" if signed_in else "/monitor/login"
    return pages.render("monitor_message.html", status, message=message, is_error=status >= 400, link=link)


def _viewed(request: Request, pages: _Pages) -> tuple[WebSession, Computed] | Response:
    """Return the session and the logged computation, or the response to send instead."""
    session = pages.signin.current(request)
    if session is None:
        return pages.signin.to_sign_in(request)
    authorizer = pages.parts.service.authorizer
    try:
        grant: OversightGrant = authorizer.oversee(session.ctx, VIEW_EVENT, OversightAction.MONITOR_VIEW)
        return session, pages.parts.service.view(grant)
    except Denied as exc:
        return _message(pages, f"Geen toegang: {exc.text}", 403)
    except AuditUnavailable:
        return _message(pages, "Het logboek kan dit nu niet vastleggen; er is niets getoond.", 503)


def _sections(pub: Publication, pages: _Pages) -> list[dict[str, Any]]:
    parts = pages.parts
    names = {o.id: o.name.removeprefix("Gemeente ") for o in parts.service.policy().config.organisations}
    labels = region_labels({r: names.get(r, r.capitalize()) for r in pub.regions})
    rows = [*pub.regions, *([TOTAL] if pub.with_totals and len(pub.regions) > 1 else [])]
    chart_rows = [TOTAL] if pub.with_totals and len(pub.regions) > 1 else list(pub.regions)
    periods = {p: period_label(p) for p in pub.series.cols}
    head, body = grid(pub.series, labels, periods)
    config = parts.config
    sections = [
        {
            "id": SERIES_ID,
            "name": config.intake_series_name,
            "definition": config.intake_series_definition,
            "counted_from": None,
            "chart": Markup(line_chart(pub.series, rows, labels, periods, config.intake_series_name)),
            "caption": f"Lijn per regio; een onderbreking met {SUPPRESSED_MARK} is een onderdrukt aantal.",
            "head": head,
            "rows": body,
        }
    ]
    for ind, table in pub.indicators:
        head, body = grid(table, labels)
        sections.append(
            {
                "id": ind.id,
                "name": ind.name,
                "definition": ind.definition,
                "counted_from": ind.counted_from,
                "chart": Markup(bar_chart(table, chart_rows, labels, ind.name)),
                "caption": f"Staaf per categorie; {SUPPRESSED_MARK} is een onderdrukt aantal.",
                "head": head,
                "rows": body,
            }
        )
    return sections


@router.get("/static/monitor.css")
def stylesheet() -> Response:
    css = files("gateway.monitor").joinpath("templates/monitor.css").read_text(encoding="utf-8")
    return Response(
        css, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}, media_type="text/css"
    )


@router.get("")
def bare() -> Response:
    return RedirectResponse("/monitor/", 303, headers=SECURITY_HEADERS)


@router.get("/")
def monitor_page(request: Request, pages: PagesDep) -> Response:
    viewed = _viewed(request, pages)
    if isinstance(viewed, Response):
        return viewed
    session, computed = viewed
    pub = computed.publication
    org = pages.parts.service.policy().organisations[session.organisation]
    names = [r.capitalize() for r in computed.scope.regions]
    scope_text = "het hele programma" if computed.scope.programme else "regio " + ", ".join(names)
    config = pages.parts.config
    return pages.render(
        "monitor.html",
        title=config.title,
        viewer=session,
        org_name=org.name,
        csrf=session.csrf,
        audit_seq=computed.audit_seq,
        scope_text=scope_text,
        computed_at=pages.container.clock.now().strftime("%Y-%m-%d %H:%M"),
        explanation=config.disclosure.explanation,
        threshold=pub.rules.threshold,
        rounding=pub.rules.rounding,
        grain_words=_GRAIN[config.periods.grain],
        policy_version=pages.parts.service.policy().version,
        monitor_version=pub.monitor_version,
        sections=_sections(pub, pages),
        mark=SUPPRESSED_MARK,
    )


@router.get("/tables/{table}.csv")
def monitor_table_csv(
    request: Request, pages: PagesDep, table: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
) -> Response:
    known = {SERIES_ID, *(i.id for i in pages.parts.config.indicators)}
    if table not in known:
        return _message(pages, "Deze tabel bestaat niet.", 404)
    viewed = _viewed(request, pages)
    if isinstance(viewed, Response):
        return viewed
    _, computed = viewed
    pub = computed.publication
    labels = region_labels({r: r.capitalize() for r in pub.regions})
    if table == SERIES_ID:
        text = table_csv(pub.series, labels, {p: period_label(p) for p in pub.series.cols})
    else:
        text = table_csv(next(t for i, t in pub.indicators if i.id == table), labels)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="monitor-{table}.csv"',
        "Audit-Seq": str(computed.audit_seq),
    }
    return Response(text, headers=headers, media_type="text/csv; charset=utf-8")


def _login_page(
    request: Request, pages: _Pages, error: str | None = None, status: int = 200, **values: str
) -> Response:
    def render(login_csrf: str) -> str:
        return _env.get_template("monitor_login.html").render(
            title="Aanmelden: stuurgroepmonitor",
            viewer=None,
            audit_seq=None,
            login_csrf=login_csrf,
            minutes=pages.signin.minutes,
            error=error,
            acting_user=values.get("acting_user", ""),
            role=values.get("role") or "steering",
        )

    return pages.signin.login_form(request, render, status)


@router.get("/login")
def login_form(request: Request, pages: PagesDep) -> Response:
    return _login_page(request, pages)


@router.post("/login")
def login(request: Request, pages: PagesDep, form: FormDep) -> Response:
    try:
        started = pages.signin.sign_in(request, form)
    except SignInRefused as exc:
        return _login_page(request, pages, exc.text, exc.status, acting_user=exc.acting_user, role=exc.role)
    return pages.signin.started(request, started)


@router.post("/logout")
def logout(request: Request, pages: PagesDep, form: FormDep) -> Response:
    return pages.signin.sign_out(request, form)
